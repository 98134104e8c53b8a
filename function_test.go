package gust

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"a", "hello", "hello-c", "a1", strings.Repeat("x", 63)} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "Hello", "a_b", "a.b", "a/b", strings.Repeat("x", 64), "é"} {
		err := ValidateName(bad)
		if ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("ValidateName(%q) = %v, want EINVALID naming it", bad, err)
		}
	}
}

func TestSpecDefaultsAndValidate(t *testing.T) {
	s := Spec{}.WithDefaults()
	if s.Runtime != RuntimeWasm || s.MemoryMB != 128 || s.Timeout.D() != 30*time.Second ||
		s.MaxBodyBytes != 6<<20 || s.QueueTimeout.D() != time.Second || *s.Retries != 2 {
		t.Fatalf("defaults = %+v", s)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	zero := 0
	if s := (Spec{Retries: &zero}).WithDefaults(); *s.Retries != 0 {
		t.Fatal("explicit retries 0 overwritten")
	}
	for name, tc := range map[string]struct {
		mod  func(*Spec)
		want string
	}{
		"runtime":       {func(s *Spec) { s.Runtime = "java" }, "runtime"},
		"memory":        {func(s *Spec) { s.MemoryMB = MaxMemoryMB + 1 }, "memory"},
		"timeout":       {func(s *Spec) { s.Timeout = Duration(MaxTimeout + 1) }, "timeout"},
		"min>max":       {func(s *Spec) { s.MinInstances = s.MaxConcurrency + 1 }, "min instances"},
		"wasm per-inst": {func(s *Spec) { s.PerInstanceConcurrency = 4 }, "one call at a time"},
		"env name":      {func(s *Spec) { s.Env = map[string]string{"1X": "y"} }, "env name"},
		"protocol":      {func(s *Spec) { s.Runtime, s.Protocol = RuntimeProcess, "grpc" }, "protocol"},
		"handler":       {func(s *Spec) { s.Runtime, s.Handler = RuntimePython3, "nodot" }, "handler"},
		"wasm cmd":      {func(s *Spec) { s.Cmd = []string{"./x"} }, "not wasm"},
		"trigger none":  {func(s *Spec) { s.Triggers = []Trigger{{}} }, "exactly one"},
		"trigger two":   {func(s *Spec) { s.Triggers = []Trigger{{Cron: "@every 1s", Subject: "x"}} }, "exactly one"},
	} {
		t.Run(name, func(t *testing.T) {
			s := Spec{}.WithDefaults()
			tc.mod(&s)
			err := s.Validate()
			if ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want EINVALID mentioning %q", err, tc.want)
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	var s Spec
	if err := json.Unmarshal([]byte(`{"timeout":"1m30s","idleTimeout":1000}`), &s); err != nil {
		t.Fatal(err)
	}
	if s.Timeout.D() != 90*time.Second || s.IdleTimeout.D() != 1000 {
		t.Fatalf("parsed %v %v", s.Timeout, s.IdleTimeout)
	}
	b, _ := json.Marshal(Spec{Timeout: Duration(5 * time.Second)})
	if !strings.Contains(string(b), `"timeout":"5s"`) {
		t.Fatalf("marshal = %s", b)
	}
	if err := json.Unmarshal([]byte(`{"timeout":"soon"}`), &s); err == nil || !strings.Contains(err.Error(), "soon") {
		t.Fatalf("bad duration error = %v", err)
	}
}

func TestAlias(t *testing.T) {
	canary := Alias{Name: "live", Targets: []AliasTarget{{Version: 3, Weight: 90}, {Version: 4, Weight: 10}}}
	if err := canary.Validate(); err != nil {
		t.Fatal(err)
	}
	counts := map[int]int{}
	for r := 0; r < 100; r++ {
		counts[canary.Pick(r)]++
	}
	if counts[3] != 90 || counts[4] != 10 {
		t.Fatalf("split = %v", counts)
	}
	for name, a := range map[string]Alias{
		"sum":      {Name: "x", Targets: []AliasTarget{{1, 50}, {2, 40}}},
		"dup":      {Name: "x", Targets: []AliasTarget{{1, 50}, {1, 50}}},
		"none":     {Name: "x"},
		"three":    {Name: "x", Targets: []AliasTarget{{1, 40}, {2, 30}, {3, 30}}},
		"zero ver": {Name: "x", Targets: []AliasTarget{{0, 100}}},
		"bad name": {Name: "X!", Targets: []AliasTarget{{1, 100}}},
		"zero wt":  {Name: "x", Targets: []AliasTarget{{1, 0}, {2, 100}}},
	} {
		if err := a.Validate(); ErrorCode(err) != EINVALID {
			t.Errorf("%s: Validate = %v, want EINVALID", name, err)
		}
	}
}

func TestErrors(t *testing.T) {
	cause := errors.New("disk on fire")
	err := fmt.Errorf("deploying: %w", WrapError(ECONFLICT, cause, "version %d taken", 3))
	if ErrorCode(err) != ECONFLICT || ErrorMessage(err) != "version 3 taken" || !errors.Is(err, cause) {
		t.Fatalf("code %q message %q", ErrorCode(err), ErrorMessage(err))
	}
	if ErrorCode(cause) != EINTERNAL || ErrorMessage(cause) != "internal error" {
		t.Fatal("plain errors must be internal and not leak their text")
	}
	if ErrorCode(nil) != "" || StatusOf(nil) != StatusOK || StatusOf(Errorf(ETHROTTLED, "x")) != StatusThrottled ||
		StatusOf(Errorf(EOOM, "x")) != StatusOOM || StatusOf(Errorf(ETIMEOUT, "x")) != StatusTimeout {
		t.Fatal("StatusOf mapping")
	}
}

// TestValidNameMatchesRE checks the hand-written name check against the
// regular expression that defines valid names, on edge cases and on
// every short string over a small alphabet.
func TestValidNameMatchesRE(t *testing.T) {
	cases := []string{"", "a", "-", "a-", "-a", "a-b", "A", "a_b", "a.b", "é", "0", "9-9",
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 62) + "-", "a\n"}
	alphabet := []byte("az09-A_")
	var gen func(prefix []byte, n int)
	gen = func(prefix []byte, n int) {
		cases = append(cases, string(prefix))
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			gen(append(prefix, c), n-1)
		}
	}
	gen(nil, 4)
	for _, s := range cases {
		if got, want := validName(s), nameRE.MatchString(s); got != want {
			t.Errorf("validName(%q) = %v, regexp says %v", s, got, want)
		}
	}
}
