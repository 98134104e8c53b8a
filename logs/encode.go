package logs

import (
	"strconv"
	"time"

	"github.com/gustfaas/gust/internal/jsonstr"
)

// appendEntry appends e as one NDJSON line, byte for byte what
// json.Encoder writes for it, without its reflection: the publisher
// encodes every line a function writes, and encoding/json's per-value
// work was a third of a line's cost.
func appendEntry(b []byte, e *Entry) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","function":`...)
	b = jsonstr.Append(b, e.Function)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(e.Version), 10)
	if e.Invocation != "" {
		b = append(b, `,"invocation":`...)
		b = jsonstr.Append(b, e.Invocation)
	}
	b = append(b, `,"stream":`...)
	b = jsonstr.Append(b, e.Stream)
	b = append(b, `,"message":`...)
	b = jsonstr.Append(b, e.Message)
	return append(b, "}\n"...)
}

// jsonTimeOK reports whether t encodes as JSON: encoding/json refuses
// years outside 0..9999, and so does appendEntry's caller.
func jsonTimeOK(t time.Time) bool {
	y := t.Year()
	return y >= 0 && y <= 9999
}
