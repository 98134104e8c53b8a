package meter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/s2"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/internal/jsonstr"
)

// A usage message holds the records of one function as NDJSON: one JSON
// object per line, in the order they were recorded. One record per
// message, as the stream held before batching, is the same format with one
// line, so old streams still read. A message with the encodingHeader set
// to "s2" holds that NDJSON compressed with S2 (github.com/klauspost/
// compress/s2, the block format): the stream stores, copies and writes
// every byte several times over, and S2 makes a record about a quarter of
// its size for a fraction of what those copies cost.

// encodingHeader names the compression of a usage message's body.
const encodingHeader = "Gust-Encoding"

// maxDecodedBytes bounds a decompressed usage message (publishers keep
// them under a quarter megabyte).
const maxDecodedBytes = 16 << 20

// compress returns raw compressed into buf when that is smaller, and
// whether it did.
func compress(buf, raw []byte) ([]byte, bool) {
	if n := s2.MaxEncodedLen(len(raw)); n > 0 && cap(buf) < n {
		buf = make([]byte, n)
	}
	z := s2.Encode(buf[:cap(buf)], raw)
	if len(z) >= len(raw) {
		return buf[:0], false
	}
	return z, true
}

// messageRecords returns the NDJSON of a usage message given its encoding
// header.
func messageRecords(encoding string, data []byte) ([]byte, error) {
	switch encoding {
	case "":
		return data, nil
	case "s2":
		n, err := s2.DecodedLen(data)
		if err != nil {
			return nil, fmt.Errorf("s2 usage message: %w", err)
		}
		if n > maxDecodedBytes {
			return nil, fmt.Errorf("s2 usage message of %d bytes decoded, over %d", n, maxDecodedBytes)
		}
		out, err := s2.Decode(nil, data)
		if err != nil {
			return nil, fmt.Errorf("s2 usage message: %w", err)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("usage message in unknown encoding %q", encoding)
	}
}

// appendJSON appends r as one JSON object, the same fields json.Marshal
// writes, without reflection: the publisher encodes every invocation, so
// its cost is per invocation.
func (r *Record) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = jsonstr.Append(b, r.ID)
	b = append(b, `,"function":`...)
	b = jsonstr.Append(b, r.Function)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(r.Version), 10)
	if r.Trigger != "" {
		b = append(b, `,"trigger":`...)
		b = jsonstr.Append(b, r.Trigger)
	}
	b = append(b, `,"start":"`...)
	start := r.Start
	// time.Time refuses to marshal years outside 0..9999; a zero start
	// makes the aggregator use the message time instead.
	if y := start.Year(); y < 0 || y > 9999 {
		start = time.Time{}
	}
	b = start.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","durationUs":`...)
	b = strconv.AppendInt(b, r.DurationUs, 10)
	b = append(b, `,"billedMs":`...)
	b = strconv.AppendInt(b, r.BilledMs, 10)
	b = append(b, `,"memoryMB":`...)
	b = strconv.AppendInt(b, int64(r.MemoryMB), 10)
	b = append(b, `,"gbSeconds":`...)
	g := r.GBSeconds
	if math.IsNaN(g) || math.IsInf(g, 0) {
		g = 0 // not a JSON number; it cannot come from NewRecord
	}
	b = strconv.AppendFloat(b, g, 'g', -1, 64)
	b = append(b, `,"cold":`...)
	b = strconv.AppendBool(b, r.Cold)
	b = append(b, `,"status":`...)
	b = jsonstr.Append(b, r.Status)
	if r.Error != "" {
		b = append(b, `,"error":`...)
		b = jsonstr.Append(b, r.Error)
	}
	if r.HTTPStatus != 0 {
		b = append(b, `,"httpStatus":`...)
		b = strconv.AppendInt(b, int64(r.HTTPStatus), 10)
	}
	return append(b, '}')
}

// decodeRecords calls fn for each record of a usage message, in order. A
// malformed line is skipped and counted in bad, with the first error, so
// one bad record does not hide the others.
func decodeRecords(data []byte, fn func(*Record)) (bad int, err error) {
	var (
		r Record
		d fastDecoder
	)
	for line := 0; len(data) > 0; line++ {
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, nil
		}
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		r = Record{}
		if d.decode(l, &r) {
			fn(&r)
			continue
		}
		r = Record{}
		if e := json.Unmarshal(l, &r); e != nil {
			if bad == 0 {
				err = fmt.Errorf("usage record on line %d: %w", line+1, e)
			}
			bad++
			continue
		}
		fn(&r)
	}
	return bad, err
}

// fastDecoder reads the flat objects appendJSON writes five times faster
// than encoding/json, which matters because the aggregator decodes every
// record. Anything else it does not understand (an escaped string, an
// unknown field, a nested value) makes decode report false, and the
// caller falls back to encoding/json, which has the final word.
type fastDecoder struct {
	// Records of one message share their function (and mostly their
	// trigger); reusing the previous string saves an allocation each.
	function, trigger string
}

func (d *fastDecoder) decode(b []byte, r *Record) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		key, j, ok := scanString(b, i)
		if !ok {
			return false
		}
		i = skipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return false
		}
		if b[i] == '"' {
			val, j, ok := scanString(b, i)
			if !ok || !d.setString(r, key, val) {
				return false
			}
			i = j
		} else {
			j := i
			for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ' ' && b[j] != '\t' && b[j] != '\r' && b[j] != '\n' {
				j++
			}
			if !setLiteral(r, key, b[i:j]) {
				return false
			}
			i = j
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// scanString returns the contents of the string that starts at b[i],
// which must be plain: an escape or a byte that is not valid UTF-8 is
// left to encoding/json.
func scanString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s := b[i+1 : j]
			return s, j + 1, utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, j, false
		}
	}
	return nil, len(b), false
}

func (d *fastDecoder) setString(r *Record, key, val []byte) bool {
	switch string(key) {
	case "id":
		r.ID = string(val)
	case "function":
		if string(val) != d.function {
			d.function = string(val)
		}
		r.Function = d.function
	case "trigger":
		if string(val) != d.trigger {
			d.trigger = string(val)
		}
		r.Trigger = d.trigger
	case "status":
		r.Status = internStatus(val)
	case "error":
		r.Error = string(val)
	case "start":
		t, err := time.Parse(time.RFC3339Nano, string(val))
		if err != nil {
			return false
		}
		r.Start = t
	default:
		return false
	}
	return true
}

func internStatus(val []byte) string {
	for _, s := range [...]string{gust.StatusOK, gust.StatusError, gust.StatusTimeout, gust.StatusThrottled, gust.StatusOOM} {
		if string(val) == s {
			return s
		}
	}
	return string(val)
}

func setLiteral(r *Record, key, val []byte) bool {
	var err error
	switch string(key) {
	case "version":
		if !isNumber(val) {
			return false
		}
		var v int64
		v, err = strconv.ParseInt(string(val), 10, 0)
		r.Version = int(v)
	case "durationUs":
		r.DurationUs, err = strconv.ParseInt(string(val), 10, 64)
	case "billedMs":
		r.BilledMs, err = strconv.ParseInt(string(val), 10, 64)
	case "memoryMB":
		var v int64
		v, err = strconv.ParseInt(string(val), 10, 0)
		r.MemoryMB = int(v)
	case "httpStatus":
		var v int64
		v, err = strconv.ParseInt(string(val), 10, 0)
		r.HTTPStatus = int(v)
	case "gbSeconds":
		if !isNumber(val) {
			return false // ParseFloat also takes Inf, NaN and hex
		}
		r.GBSeconds, err = strconv.ParseFloat(string(val), 64)
	case "cold":
		switch string(val) {
		case "true":
			r.Cold = true
		case "false":
			r.Cold = false
		default:
			return false
		}
	default:
		return false
	}
	return err == nil
}

func isNumber(b []byte) bool {
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return false
	}
	for _, c := range b {
		if (c < '0' || c > '9') && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
			return false
		}
	}
	return true
}
