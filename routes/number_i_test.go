package routes

import (
	"runtime"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
)

func TestNumberInRange(t *testing.T) {
	for lit, want := range map[string]bool{
		"0": true, "-0": true, "1.5": true, "-1e2": true, "1e308": true, "-1.7976931348623157e308": true,
		"4.9e-324": true, "1e-300": true, "12345678901234567890123456789": true,
		strings.Repeat("9", 308): true, "0." + strings.Repeat("0", 320) + "1": true,
		"0e1000000": true, "0.000e-99999": true, "1e0000000000000000001": true,
		"1e309": false, "-1e309": false, "1e1000000": false, "10e1000001": false, "1E+400": false,
		"1e-1000000": false, "2e-324": false, "-1e-400": false, strings.Repeat("9", 309): false,
		"0." + strings.Repeat("0", 400) + "1":    false,
		"1." + strings.Repeat("0", maxNumberLen): false,
	} {
		if got := numberInRange(lit); got != want {
			t.Errorf("numberInRange(%.40q) = %v, want %v", lit, got, want)
		}
	}
}

// A body of numbers with huge exponents cost the schema library an exact
// fraction each (40-60 ms per number; a 501-byte body took 3 s). They are
// refused before any validator looks at them: the test counts the bytes
// one validation allocates, which that fraction made megabytes per number.
func TestHugeExponentsRefusedCheaply(t *testing.T) {
	schemas := []string{
		`{"type":"array","items":{"type":"number","maximum":10}}`,
		`{"type":"array","items":{"multipleOf":0.5}}`,
		`{"type":"array","items":{"type":"integer"}}`,
		`{"anyOf":[{"type":"array","items":{"minimum":0}},{"type":"string"}]}`, // no fast check
		`{"type":"array"}`, // numbers unconstrained: refused all the same
	}
	for _, neg := range []string{"", "-"} {
		nums := make([]string, 50)
		for i := range nums {
			nums[i] = "1e" + neg + "1000000"
		}
		body := []byte("[" + strings.Join(nums, ",") + "]")
		for _, sch := range schemas {
			p := mustCompile(t, sch)
			for _, fast := range []*fastSchema{p.fast, nil} {
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				err := validateBody(p.s, fast, body)
				runtime.ReadMemStats(&after)
				wantCode(t, err, gust.EINVALID)
				if !strings.Contains(gust.ErrorMessage(err), "number out of range at /0") {
					t.Errorf("schema %s, fast %v: %v", sch, fast != nil, err)
				}
				// The body is 451 bytes; its tree a few KiB. One
				// exact fraction of 1e1000000 alone is over 400 KiB.
				if n := after.TotalAlloc - before.TotalAlloc; n > 256<<10 {
					t.Errorf("schema %s, fast %v: one validation allocated %d bytes", sch, fast != nil, n)
				}
			}
		}
	}
}

func TestNumberOutOfRangeNamesItsPlace(t *testing.T) {
	p := mustCompile(t, `{"type":"object"}`)
	for body, at := range map[string]string{
		`1e999`:                              "at /:",
		`{"a": {"b/c": [1, 2, 1e-999]}}`:     "at /a/b~1c/2:",
		`{"x~": [[0, 1e400]], "y": 1}`:       "at /x~0/0/1:",
		`[` + strings.Repeat("7", 600) + `]`: "at /0:",
	} {
		err := validateBody(p.s, p.fast, []byte(body))
		wantCode(t, err, gust.EINVALID)
		if !strings.Contains(gust.ErrorMessage(err), "number out of range "+at) {
			t.Errorf("body %.60s: %v, want it named %s", body, err, at)
		}
	}
	// In range, the schema decides as before.
	if err := validateBody(p.s, p.fast, []byte(`{"a": [1e308, -4.9e-324, 0e99999]}`)); err != nil {
		t.Fatal(err)
	}
}
