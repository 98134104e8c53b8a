package process

import (
	"context"
	"testing"

	"github.com/gustfaas/gust"
)

// BenchmarkColdStart measures NewInstance up to readiness (sandbox,
// cgroup, process start, interpreter start, handler import) and the first
// invocation, then Close.
func BenchmarkColdStart(b *testing.B) {
	t := &testing.T{}
	d, err := New(Config{WorkDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close(context.Background())
	cases := []struct {
		name string
		spec gust.Spec
		code func() []byte
	}{
		{"go-http", gust.Spec{Runtime: gust.RuntimeProcess}, func() []byte { return httpFnB(b) }},
		{"go-lambda", gust.Spec{Runtime: gust.RuntimeProcess, Protocol: gust.ProtocolLambda}, func() []byte {
			return makeZipB(b, zipEntry{name: "bootstrap", mode: 0o755, data: goBuild(t, "../examples/lambda-go", ".")})
		}},
		{"python3", gust.Spec{Runtime: gust.RuntimePython3, Handler: "handler.handler"}, func() []byte { return zipDirB(b, "../examples/python-hello") }},
		{"nodejs", gust.Spec{Runtime: gust.RuntimeNodejs, Handler: "index.handler"}, func() []byte { return zipDirB(b, "../examples/node-hello") }},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			m, err := loadErr(d, "bench", tc.spec, tc.code(), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(context.Background())
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				in, err := m.NewInstance(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := in.Invoke(ctx, &gust.Request{Method: "GET", Path: "/echo"}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				in.Close(ctx)
				b.StartTimer()
			}
		})
	}
}

func httpFnB(b *testing.B) []byte {
	return makeZipB(b, zipEntry{name: "bootstrap", mode: 0o755, data: goBuild(&testing.T{}, "", "./testdata/httpfn")})
}

func makeZipB(b *testing.B, entries ...zipEntry) []byte {
	return makeZip(&testing.T{}, entries...)
}

func zipDirB(b *testing.B, dir string) []byte {
	code, err := ZipDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	return code
}
