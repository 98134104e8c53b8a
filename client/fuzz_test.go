package client

import (
	"testing"

	"github.com/gustfaas/gust"
)

// The manifest parser reads what users write (and what `gust deploy -f`
// is pointed at): it must answer EINVALID, never panic, and never return a
// manifest with an invalid name.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte("name: hello\ncode: hello.wasm\nruntime: wasm\nmemory: 64\ntimeout: 10s\n"))
	f.Add([]byte("name: v\nroutes:\n  - method: POST\n    path: /readings/{id}\n    auth: jwt\n    jwt: {secret: K}\n    rateLimit: {rps: 1.5}\n    schema: {type: object}\n"))
	f.Add([]byte("timeout: 30\n"))
	f.Add([]byte("memroy: 1\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("env: {A: 1, A: 2}\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if gust.ErrorCode(err) != gust.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		if m.Name != "" && gust.ValidateName(m.Name) != nil {
			t.Fatalf("accepted invalid name %q", m.Name)
		}
		// Whatever parsed must validate or refuse cleanly.
		_ = m.Spec.WithDefaults().Validate()
	})
}
