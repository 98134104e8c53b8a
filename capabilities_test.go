package gust

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestValidateCapabilities(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	for name, s := range map[string]Spec{
		"hosts":    {AllowedHosts: []string{"api.example.com", "*.cdn.example.com", "x-1.io"}},
		"files":    {Files: &Files{Dir: "static"}},
		"stored":   {Files: &Files{Digest: digest, Size: 10}},
		"kv":       {KV: true},
		"together": {AllowedHosts: []string{"a.b"}, KV: true, Files: &Files{Digest: digest}},
	} {
		if err := s.WithDefaults().Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, tc := range map[string]struct {
		s    Spec
		want string
	}{
		"ip":            {Spec{AllowedHosts: []string{"10.0.0.1"}}, "IP addresses are not allowed"},
		"ipv6":          {Spec{AllowedHosts: []string{"::1"}}, "host name only"},
		"numeric":       {Spec{AllowedHosts: []string{"127.1"}}, "IP addresses are not allowed"},
		"hex":           {Spec{AllowedHosts: []string{"0x7f.1"}}, "IP addresses are not allowed"},
		"scheme":        {Spec{AllowedHosts: []string{"https://api.example.com"}}, "no scheme, port or path"},
		"port":          {Spec{AllowedHosts: []string{"api.example.com:443"}}, "no scheme, port or path"},
		"single label":  {Spec{AllowedHosts: []string{"localhost"}}, "fully qualified"},
		"bare wildcard": {Spec{AllowedHosts: []string{"*"}}, "whole first label"},
		"mid wildcard":  {Spec{AllowedHosts: []string{"api.*.com"}}, "whole first label"},
		"wild tld":      {Spec{AllowedHosts: []string{"*.com"}}, "fully qualified"},
		"upper":         {Spec{AllowedHosts: []string{"API.example.com"}}, "lowercase"},
		"twice":         {Spec{AllowedHosts: []string{"a.b", "a.b"}}, "listed twice"},
		"bad label":     {Spec{AllowedHosts: []string{"a_b.com"}}, "not a DNS label"},
		"empty files":   {Spec{Files: &Files{}}, "give the directory"},
		"bad digest":    {Spec{Files: &Files{Digest: "md5:x"}}, "invalid files digest"},
		"process kv":    {Spec{Runtime: RuntimeProcess, KV: true}, "apply to the wasm runtime"},
		"process hosts": {Spec{Runtime: RuntimeProcess, AllowedHosts: []string{"a.b"}}, "apply to the wasm runtime"},
	} {
		err := tc.s.WithDefaults().Validate()
		if ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want EINVALID containing %q", name, err, tc.want)
		}
	}
}

func TestFilesJSON(t *testing.T) {
	var s Spec
	if err := json.Unmarshal([]byte(`{"files":"static"}`), &s); err != nil || s.Files == nil || s.Files.Dir != "static" {
		t.Fatalf("string form: %+v %v", s.Files, err)
	}
	if err := json.Unmarshal([]byte(`{"files":{"digest":"sha256:00","size":3}}`), &s); err != nil || s.Files.Digest != "sha256:00" || s.Files.Size != 3 {
		t.Fatalf("object form: %+v %v", s.Files, err)
	}
	if err := json.Unmarshal([]byte(`{"files":{"dri":"x"}}`), &s); err == nil {
		t.Fatal("unknown field in files accepted")
	}
	b, _ := json.Marshal(Spec{Files: &Files{Digest: "sha256:00"}})
	if !strings.Contains(string(b), `"files":{"digest":"sha256:00"}`) {
		t.Fatalf("marshal: %s", b)
	}
}
