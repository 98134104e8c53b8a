package routes

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// fastSchemas are schemas the fast check is held to the library on: the
// examples/validate one, one per keyword it implements, and some it must
// leave to the library.
var fastSchemas = []string{
	// 0: examples/validate
	`{"type":"object","required":["sensor","time","value"],"additionalProperties":false,
	  "properties":{"sensor":{"type":"string","pattern":"^[a-z0-9-]{1,32}$"},"time":{"type":"string","format":"date-time"},
	  "value":{"type":"number","minimum":-100,"maximum":150},"unit":{"enum":["C","F"]}}}`,
	// 1: integers, exclusive bounds, multipleOf, bounds not exact in float64
	`{"type":"object","properties":{"n":{"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":1e3},
	  "m":{"multipleOf":0.1},"f":{"minimum":0.1,"maximum":0.30000000000000004},"big":{"maximum":12345678901234567890}}}`,
	// 2: enum and const of null and booleans, types as a list
	`{"type":["object","null"],"properties":{"e":{"enum":[null,true,"x"]},"c":{"const":false},"t":{"type":["string","null"]},
	  "ce":{"const":"a","enum":["a","b"]}}}`,
	// 3: strings: lengths in runes, unicode classes, formats
	`{"type":"object","properties":{"s":{"type":"string","minLength":2,"maxLength":4},"u":{"pattern":"^\\p{L}+$"},
	  "dot":{"pattern":"^.{0,3}$"},"i":{"pattern":"(?i)^[a-f]+$"},"neg":{"pattern":"^[^x]*$"},"sub":{"pattern":"b+"},
	  "email":{"format":"email"},"uuid":{"format":"uuid"},"ip":{"format":"ipv4"}}}`,
	// 4: arrays
	`{"type":"array","minItems":1,"maxItems":3,"prefixItems":[{"type":"string"}],"items":{"type":"number","maximum":5}}`,
	// 5: nested objects, additionalProperties as a schema, a name only required
	`{"type":"object","required":["a","only"],"properties":{"a":{"type":"object","required":["b"],"properties":{"b":{"type":"array","items":{"type":"boolean"}}}}},
	  "additionalProperties":{"type":["string","number"]}}`,
	// 6: draft-07, where format asserts and items is one schema
	`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"d":{"format":"date"},"l":{"items":{"type":"integer"}}}}`,
	// 7: keywords it leaves to the library below the top
	`{"type":"object","properties":{"r":{"$ref":"#/$defs/pos"},"all":{"allOf":[{"type":"string"},{"minLength":1}]},
	  "uniq":{"uniqueItems":true},"numEnum":{"enum":[1,2]}},"$defs":{"pos":{"type":"number","minimum":0}}}`,
	// 8: opaque at the top
	`{"anyOf":[{"type":"string"},{"type":"object"}]}`,
	// 9: true and false schemas
	`{"properties":{"yes":true,"no":false}}`,
}

var fastBodies = []string{
	`{"sensor": "greenhouse-1", "time": "2026-01-02T15:04:05Z", "value": 21.5, "unit": "C"}`,
	`{"sensor": "greenhouse-1", "time": "2026-01-02T15:04:05Z", "value": 150}`,
	`{"sensor": "greenhouse-1", "time": "2026-01-02T15:04:05Z", "value": 150.0000000000000001}`,
	`{"sensor": "greenhouse-1", "time": "2026-01-02T15:04:05Z", "value": -1e2, "unit": "F"}`,
	`{"sensor": "GREEN", "time": "2026-01-02T15:04:05Z", "value": 1}`,
	`{"sensor": "green\u0068ouse", "time": "2026-01-02T15:04:05Z", "value": 1}`,
	`{"sensor": "a", "sensor": "B", "time": "2026-01-02T15:04:05Z", "value": 1}`,
	`{"sensor": "B", "sensor": "a", "time": "2026-01-02T15:04:05Z", "value": 1}`,
	`{"sensor": "a", "time": "2026-13-02T15:04:05Z", "value": 1}`,
	`{"sensor": "a", "time": "2026-01-02T15:04:05Z", "value": 1, "extra": 1}`,
	`{"sensor": "a", "value": 1}`,
	`{"n": 1, "m": 0.3, "f": 0.1, "big": 12345678901234567890}`,
	`{"n": 1.0, "m": 1e-1, "f": 0.30000000000000004, "big": 12345678901234567891}`,
	`{"n": 0, "m": 0.33, "f": 0.09999999999999999}`,
	`{"n": 1e3}`, `{"n": 999.5}`, `{"n": 10e-1}`, `{"n": 1e99999}`, `{"m": 1e99999}`, `{"f": 1E+400}`, `{"n": -0}`,
	`{"e": null, "c": false, "t": null, "ce": "a"}`, `{"e": true, "c": true}`, `{"e": "y"}`, `{"ce": "b"}`, `null`, `[]`,
	`{"s": "ab", "u": "héllo", "dot": "a\nb", "i": "BEEF", "neg": "yy", "sub": "abc", "email": "a@example.com", "uuid": "3e4666bf-d5e5-4aa7-b8ce-cefe41c7568a", "ip": "10.0.0.1"}`,
	`{"s": "ééé", "u": "h1", "dot": "abcd", "i": "xyz", "neg": "x", "sub": "a", "email": "nope", "uuid": "x", "ip": "999.0.0.1"}`,
	`{"s": "a"}`, `{"s": "abcde"}`, "{\"u\": \"\xff\"}", "{\"neg\": \"\xff\xfe\"}", `{"dot": "\u00e9\u00e9\u00e9"}`, `{"u": ""}`,
	`["a", 1, 2.5]`, `["a"]`, `[]`, `[1]`, `["a", 6]`, `["a", 1, 2, 3]`, `["a", "b"]`,
	`{"a": {"b": [true, false]}, "only": 1, "z": "s"}`, `{"a": {"b": [true, 1]}, "only": "x"}`, `{"a": {}, "only": 1}`,
	`{"a": {"b": []}}`, `{"a": {"b": []}, "only": null}`, `{"a": {"b": []}, "only": {}}`,
	`{"d": "2026-01-02", "l": [1, 2]}`, `{"d": "2026-02-30", "l": [1.5]}`, `{"l": "not an array"}`,
	`{"r": 1, "all": "x", "uniq": [1, 2], "numEnum": 1}`, `{"r": -1}`, `{"all": ""}`, `{"numEnum": 1.0}`, `{"other": 1}`,
	`"just a string"`, `{"yes": [1, {"x": null}], "other": 2}`, `{"no": 1}`,
	` { "sensor" : "a" , "time" : "2026-01-02T15:04:05Z" , "value" : 1 } `, `{} x`, `{`, ``, `{"a":1,}`,
	"\t\r\n {\"a\" :\t1 } \n", `{"k\u0041":"v"}`, `{"value": 1, "sensor": "a", "time": "2026-01-02T15:04:05+01:00"}`,
}

type fastSchemaPair struct {
	s    *jsonschema.Schema
	fast *fastSchema
}

func mustCompile(tb testing.TB, schema string) *fastSchemaPair {
	tb.Helper()
	s, err := compileSchema([]byte(schema))
	if err != nil {
		tb.Fatalf("schema %s: %v", schema, err)
	}
	return &fastSchemaPair{s: s, fast: compileFast(s)}
}

var (
	compiledOnce sync.Once
	compiled     []*fastSchemaPair
)

// compiledFastSchemas compiles fastSchemas once, not once per fuzz input.
func compiledFastSchemas(tb testing.TB) []*fastSchemaPair {
	compiledOnce.Do(func() {
		for _, s := range fastSchemas {
			compiled = append(compiled, mustCompile(tb, s))
		}
	})
	return compiled
}

// sameErrors is the words of an error message, sorted: the library lists
// a map's properties in Go's random map order, so even its own message
// for one body varies from run to run.
func sameErrors(msg string) string {
	words := strings.FieldsFunc(msg, func(r rune) bool { return r == ' ' || r == ',' || r == ';' })
	slices.Sort(words)
	return strings.Join(words, " ")
}

// validateCatching is validateBody, telling a panic apart. The library
// panics on some numbers it cannot make a big.Rat of (10e1000001 against
// multipleOf or minimum); the fast path must leave those to it, panic
// and all, as it found them.
func validateCatching(s *jsonschema.Schema, fast *fastSchema, body []byte) (err error, panicked bool) {
	defer func() {
		if recover() != nil {
			err, panicked = nil, true
		}
	}()
	return validateBody(s, fast, body), false
}

// validateBody's answer with the fast check and with the library alone
// must be the same, error text and all (up to the library's own order);
// and where the fast check says valid, the library must.
func checkSameVerdict(t *testing.T, schema int, body []byte) {
	p := compiledFastSchemas(t)[schema]
	got, gotPanic := validateCatching(p.s, p.fast, body)
	want, wantPanic := validateCatching(p.s, nil, body)
	if gotPanic != wantPanic {
		t.Fatalf("schema %d, body %q: fast path panics %v, library %v", schema, body, gotPanic, wantPanic)
	}
	if (got == nil) != (want == nil) || got != nil && sameErrors(got.Error()) != sameErrors(want.Error()) {
		t.Fatalf("schema %d, body %q: fast path %v, library %v", schema, body, got, want)
	}
	if p.fast != nil && fastValid(p.fast, body) && want != nil {
		t.Fatalf("schema %d, body %q: fast check says valid, library %v", schema, body, want)
	}
}

func FuzzFastSchema(f *testing.F) {
	for i := range fastSchemas {
		for _, b := range fastBodies {
			f.Add(uint8(i), []byte(b))
		}
	}
	f.Fuzz(func(t *testing.T, schema uint8, body []byte) {
		checkSameVerdict(t, int(schema)%len(fastSchemas), body)
	})
}

func TestFastSchemaVerdicts(t *testing.T) {
	for i := range fastSchemas {
		for _, b := range fastBodies {
			checkSameVerdict(t, i, []byte(b))
		}
	}
}

// The fast check must actually decide the bodies a route usually sees,
// and leave alone what it does not implement.
func TestFastSchemaCoverage(t *testing.T) {
	valid := map[int][]string{
		0: {fastBodies[0], fastBodies[1], fastBodies[3]},
		1: {`{"n": 1, "m": 0.3, "f": 0.1, "big": 12345678901234567890}`, `{"n": 10e-1}`},
		2: {`{"e": null, "c": false, "t": null, "ce": "a"}`, `null`},
		3: {`{"s": "ééé", "u": "héllo", "dot": "a", "i": "BEEF", "neg": "yy", "sub": "abc", "email": "a@example.com"}`},
		4: {`["a", 1, 2.5]`, `["a"]`},
		5: {`{"a": {"b": [true, false]}, "only": 1, "z": "s"}`},
		6: {`{"d": "2026-01-02", "l": [1, 2]}`},
		7: {`{"other": 1}`},
		9: {`{"yes": [1, {"x": null}], "other": 2}`},
	}
	for i, bodies := range valid {
		p := mustCompile(t, fastSchemas[i])
		if p.fast == nil {
			t.Fatalf("schema %d has no fast check", i)
		}
		for _, b := range bodies {
			if !fastValid(p.fast, []byte(b)) {
				t.Errorf("schema %d: fast check unsure of valid body %s", i, b)
			}
			if err := p.s.Validate(mustDecode(t, b)); err != nil {
				t.Errorf("schema %d: library refuses %s: %v", i, b, err)
			}
		}
	}
	p := mustCompile(t, fastSchemas[7])
	for _, b := range []string{`{"r": 1}`, `{"all": "x"}`, `{"uniq": [1]}`, `{"numEnum": 1}`} {
		if fastValid(p.fast, []byte(b)) {
			t.Errorf("fast check decided %s, which needs a keyword it does not implement", b)
		}
	}
	if p := mustCompile(t, fastSchemas[8]); p.fast != nil {
		t.Error("anyOf at the top has a fast check")
	}
	if p := mustCompile(t, fastSchemas[0]); p.fast.props["sensor"].sch.classRun == nil {
		t.Error("the sensor pattern is not matched as a class run")
	}
}

func mustDecode(t *testing.T, b string) any {
	v, err := decodeInstance([]byte(b))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var classRunPatterns = []string{
	`^[a-z0-9-]{1,32}$`, `^[A-Z]+$`, `^\d*$`, `(?i)^[a-f]{2}$`, `^[^x]{2,}$`, `^\w?$`, `^.{0,3}$`, `(?s)^.+$`,
	`^\p{Greek}{1,2}$`, `^[\x{fffd}a]{2}$`, `^[é-ü]+$`,
}

// classRun stands in for regexp on the patterns it takes: it must agree
// on every string, valid UTF-8 or not.
func FuzzClassRun(f *testing.F) {
	for _, s := range []string{"", "a", "abc-1", "ABC", "x", "xx", "\xff", "\xff\xfe", "é", "αβ", "a\nb", "\n", strings.Repeat("a", 33), "\ufffd", "ü"} {
		f.Add(uint8(0), s)
		f.Add(uint8(7), s)
	}
	f.Fuzz(func(t *testing.T, which uint8, s string) {
		pat := classRunPatterns[int(which)%len(classRunPatterns)]
		c := compileClassRun(pat)
		if c == nil {
			t.Fatalf("%s is not a class run", pat)
		}
		if got, want := c.match(s), regexp.MustCompile(pat).MatchString(s); got != want {
			t.Fatalf("%s on %q: %v, regexp %v", pat, s, got, want)
		}
	})
}

func TestClassRunShapes(t *testing.T) {
	for _, p := range []string{`^ab$`, `^[a-z]+`, `[a-z]+$`, `^[a-z]+|x$`, `(?m)^[a-z]+$`, `^([a-z])+$`, `^a+$`} {
		if c := compileClassRun(p); c != nil && p != `^a+$` {
			t.Errorf("%s taken as a class run", p)
		}
	}
	// A literal is not a class to the parser; regexp keeps it.
	if c := compileClassRun(`^a+$`); c != nil && !c.match("aa") {
		t.Error(`^a+$ does not match "aa"`)
	}
}

func TestIntegerLiteral(t *testing.T) {
	for lit, want := range map[string]bool{
		"0": true, "-0": true, "1": true, "1.0": true, "1.5": false, "1e5": true, "1.5e1": true, "1.55e1": false,
		"1e-1": false, "10e-1": true, "0e-5": true, "0.000": true, "-12.345e2": false, "-12.340e2": true, "-12.300e1": true, "1E+2": true,
	} {
		got, ok := integerLiteral(lit)
		if !ok || got != want {
			t.Errorf("integerLiteral(%s) = %v, %v; want %v", lit, got, ok, want)
		}
	}
	for _, lit := range []string{"1e10000", "1e"} {
		if _, ok := integerLiteral(lit); ok {
			t.Errorf("integerLiteral(%s) claims to know", lit)
		}
	}
}

// With a schema that asserts nothing, fastValid is a syntax check: it
// must accept exactly what json.Valid accepts, bar nesting deeper than
// maxFastDepth, which it leaves to the library, and numbers out of range
// (numberInRange), which validateBody refuses.
func FuzzFastSyntax(f *testing.F) {
	for _, b := range fastBodies {
		f.Add([]byte(b))
	}
	for _, b := range []string{
		`{"a":01}`, `[1,]`, `{"a" 1}`, `{"a":1 "b":2}`, `"\x"`, `"\u12"`, `"\u12g4"`, `"\uD83D\uDE00"`, `1.`, `.5`, `-`, `-01`, `1e`, `1e+`,
		`[1 2]`, "\"a\x01\"", "\"a\x7f\xff\"", `{"a":tru}`, `nul`, `nullx`, `[-0.0e-0]`, `{"":""}`, `{,}`, `[,1]`, `{"a":1}}`,
		"\xef\xbb\xbf{}", " \t\r\n1\n", "\v1", strings.Repeat("[", 600) + strings.Repeat("]", 600), `[[[]]]`, `{"a":[{"b":{}}]}`,
	} {
		f.Add([]byte(b))
	}
	anything := compileFast(mustCompile(f, `{}`).s)
	if anything == nil || !anything.anything {
		f.Fatal("{} is not taken as asserting nothing")
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, want := fastValid(anything, b), json.Valid(b)
		if got && !want || !got && want && maxDepth(b) <= maxFastDepth && checkNumbers(mustDecode(t, string(b))) == nil {
			t.Fatalf("%q: fastValid %v, json.Valid %v", b, got, want)
		}
	})
}

// maxDepth is how deeply b nests, counting brackets outside strings.
func maxDepth(b []byte) int {
	depth, most, inStr := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case !inStr && (c == '[' || c == '{'):
			depth++
			most = max(most, depth)
		case !inStr && (c == ']' || c == '}'):
			depth--
		}
	}
	return most
}

// plainDateTime stands in for the library's date-time check on the
// strings it accepts: the library must accept every one of them.
func FuzzPlainDateTime(f *testing.F) {
	for _, s := range []string{
		"2026-01-02T15:04:05Z", "2026-01-02t15:04:05z", "2026-01-02T15:04:05.123456789+07:00", "2026-01-02T15:04:05-23:59",
		"2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2000-02-29T00:00:00Z", "0000-01-01T00:00:00Z",
		"2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-01-00T00:00:00Z", "2026-12-31T23:59:60Z",
		"2026-06-30T23:59:60Z", "2026-01-02T24:00:00Z", "2026-01-02T15:60:00Z", "2026-01-02T15:04:05.Z", "2026-01-02T15:04:05+24:00",
		"2026-01-02T15:04:05+07:60", "2026-01-02T15:04:05+0700", "2026-01-02 15:04:05Z", "+026-01-02T15:04:05Z", "2026-01-02T15:04:05",
		"2026-01-02T15:04:05Zx", "2026-01-02T1:04:05Z", "2026-1-02T15:04:05Z", "2026-01-02T15:04:05.1\u0660Z",
	} {
		f.Add(s)
	}
	p := mustCompile(f, `{"format":"date-time"}`)
	lib := p.s.Format
	if lib == nil || lib.Name != "date-time" {
		f.Fatal("no date-time format compiled")
	}
	f.Fuzz(func(t *testing.T, s string) {
		if plainDateTime(s) {
			if err := lib.Validate(s); err != nil {
				t.Fatalf("%q: plainDateTime accepts, the library says %v", s, err)
			}
		}
	})
}

func TestPlainDateTimeCommonShapes(t *testing.T) {
	for _, s := range []string{"2026-01-02T15:04:05Z", "2024-02-29t00:00:00.5z", "2026-01-02T15:04:05.123+07:00", "2026-12-31T23:59:59-11:30"} {
		if !plainDateTime(s) {
			t.Errorf("plainDateTime(%q) is false", s)
		}
	}
}
