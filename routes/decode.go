package routes

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
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
