package routes

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/gustfaas/gust"
)

// decodeInstance returns the value jsonschema.UnmarshalJSON would make of
// body (objects as map[string]any, arrays as []any, numbers as
// json.Number, strings, bools, nil), with the same errors, at a fraction
// of its cost: that decoder streams through a json.Decoder and reflection,
// which was half of what a guarded route paid per request.
//
// The two agree by construction. json.Valid runs the same scanner the
// decoder does, so a body it refuses goes to UnmarshalJSON itself for the
// very error; a body it accepts is one the decoder accepts too, and the
// walk below only builds the tree. A string with escapes or invalid UTF-8
// is unquoted by encoding/json, so its replacement rules stay its own.
// FuzzDecodeInstance holds the two to the same results.
func decodeInstance(body []byte) (any, error) {
	if !json.Valid(body) {
		return jsonschema.UnmarshalJSON(bytes.NewReader(body))
	}
	// One copy of the body backs every plain string and number, instead
	// of an allocation each.
	d := instanceDecoder{b: body, s: string(body)}
	return d.value(), nil
}

// instanceDecoder walks JSON already known to be valid.
type instanceDecoder struct {
	b []byte
	s string // b as a string
	i int
}

func (d *instanceDecoder) skipSpace() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *instanceDecoder) value() any {
	d.skipSpace()
	switch c := d.b[d.i]; c {
	case '{':
		d.i++
		obj := make(map[string]any)
		d.skipSpace()
		if d.b[d.i] == '}' {
			d.i++
			return obj
		}
		for {
			d.skipSpace()
			k := d.str()
			d.skipSpace()
			d.i++ // ':'
			obj[k] = d.value()
			d.skipSpace()
			c := d.b[d.i]
			d.i++
			if c == '}' {
				return obj
			}
		}
	case '[':
		d.i++
		arr := make([]any, 0)
		d.skipSpace()
		if d.b[d.i] == ']' {
			d.i++
			return arr
		}
		for {
			arr = append(arr, d.value())
			d.skipSpace()
			c := d.b[d.i]
			d.i++
			if c == ']' {
				return arr
			}
		}
	case '"':
		return d.str()
	case 't':
		d.i += len("true")
		return true
	case 'f':
		d.i += len("false")
		return false
	case 'n':
		d.i += len("null")
		return nil
	default: // a number
		start := d.i
		for d.i < len(d.b) && isNumberByte(d.b[d.i]) {
			d.i++
		}
		return json.Number(d.s[start:d.i])
	}
}

// str reads the string starting at d.i (its opening quote).
func (d *instanceDecoder) str() string {
	start := d.i
	d.i++
	plain := true
	for {
		c := d.b[d.i]
		if c == '"' {
			break
		}
		if c == '\\' {
			plain = false
			d.i++ // the escaped byte cannot end the string
		}
		d.i++
	}
	d.i++
	quoted := d.b[start:d.i]
	raw := quoted[1 : len(quoted)-1]
	if plain && utf8.Valid(raw) {
		return d.s[start+1 : d.i-1]
	}
	var s string
	// Valid JSON: this cannot fail.
	_ = json.Unmarshal(quoted, &s)
	return s
}

func isNumberByte(c byte) bool {
	return '0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// maxNumberLen bounds a number literal in a body checked against a
// schema. float64 needs 17 significant digits and its largest value has
// 309; a literal past this is no number a client means, only work for the
// schema library, which builds an exact fraction of every literal.
const maxNumberLen = 512

// numberInRange reports whether the JSON number lit (valid by JSON's
// grammar) is one a schema route accepts: at most maxNumberLen bytes and
// within float64's range, zero included but not a nonzero value that
// underflows to it. Outside that, the schema library's exact fraction of
// the literal costs time linear or worse in the exponent (1e1000000 took
// 40-60 ms), which a small body could repeat thousands of times.
func numberInRange(lit string) bool {
	if len(lit) > maxNumberLen {
		return false
	}
	exp := -1
	for i := 0; i < len(lit); i++ {
		if lit[i] == 'e' || lit[i] == 'E' {
			exp = i
			break
		}
	}
	// Without an exponent, 300 bytes hold no value past 1e300 or, but
	// zero, below 1e-299. With one of at most two digits, a 200-byte
	// mantissa stays within 1e200 * 1e99 and 1e-200 * 1e-99. The common
	// number is decided here, without parsing it.
	if exp < 0 && len(lit) <= 300 {
		return true
	}
	if exp >= 0 && exp <= 200 {
		e := lit[exp+1:]
		if e != "" && (e[0] == '+' || e[0] == '-') {
			e = e[1:]
		}
		if len(e) <= 2 {
			return true
		}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return false
	}
	if f != 0 {
		return true
	}
	mant := lit
	if exp >= 0 {
		mant = lit[:exp]
	}
	for i := 0; i < len(mant); i++ {
		if '1' <= mant[i] && mant[i] <= '9' {
			return false // a nonzero value that underflowed
		}
	}
	return true
}

// checkNumbers refuses a decoded body (decodeInstance's tree) holding a
// number numberInRange does not accept. Errors: EINVALID naming the
// number's place as a JSON pointer.
func checkNumbers(v any) error {
	var path []string
	if !numbersInRange(v, &path) {
		var ptr strings.Builder
		for i := len(path) - 1; i >= 0; i-- {
			ptr.WriteString("/" + strings.ReplaceAll(strings.ReplaceAll(path[i], "~", "~0"), "/", "~1"))
		}
		at := ptr.String()
		if at == "" {
			at = "/"
		}
		return gust.Errorf(gust.EINVALID, "request body: number out of range at %s: a route with a schema takes numbers within float64's range, of at most %d characters", at, maxNumberLen)
	}
	return nil
}

// numbersInRange walks v; on a number out of range it returns false with
// *path holding the way to it, innermost first.
func numbersInRange(v any, path *[]string) bool {
	switch x := v.(type) {
	case json.Number:
		return numberInRange(string(x))
	case map[string]any:
		for k, e := range x {
			if !numbersInRange(e, path) {
				*path = append(*path, k)
				return false
			}
		}
	case []any:
		for i, e := range x {
			if !numbersInRange(e, path) {
				*path = append(*path, strconv.Itoa(i))
				return false
			}
		}
	}
	return true
}
