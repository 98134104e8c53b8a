package logs

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendEntry appends e as one NDJSON line, byte for byte what
// json.Encoder writes for it, without its reflection: the publisher
// encodes every line a function writes, and encoding/json's per-value
// work was a third of a line's cost.
func appendEntry(b []byte, e *Entry) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","function":`...)
	b = appendJSONString(b, e.Function)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(e.Version), 10)
	if e.Invocation != "" {
		b = append(b, `,"invocation":`...)
		b = appendJSONString(b, e.Invocation)
	}
	b = append(b, `,"stream":`...)
	b = appendJSONString(b, e.Stream)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, e.Message)
	return append(b, "}\n"...)
}

// jsonTimeOK reports whether t encodes as JSON: encoding/json refuses
// years outside 0..9999, and so does appendEntry's caller.
func jsonTimeOK(t time.Time) bool {
	y := t.Year()
	return y >= 0 && y <= 9999
}

// htmlSafe marks the ASCII bytes encoding/json writes as they are (with
// its default HTML escaping).
var htmlSafe = func() (s [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		s[c] = true
	}
	for _, c := range `"\<>&` {
		s[c] = false
	}
	return s
}()

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted and escaped as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if htmlSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
