package logs

import (
	"encoding/binary"
	"errors"
	"time"
)

// A batch message is binary: batchMagic, then the function's name, then
// its entries, each
//
//	varint  time in Unix nanoseconds, less the previous entry's (the
//	        first: less zero)
//	uvarint version
//	byte    stream: streamStdout, streamStderr, streamGust, or
//	        streamOther followed by the name (uvarint length, bytes)
//	uvarint length, bytes: invocation id ("" for none)
//	uvarint length, bytes: message
//
// The function's name is said once per batch, and a line's time is a
// few bytes, not 35 of RFC 3339: against the NDJSON batches it replaced
// this halves what a line costs the stream in bytes, and writing it is
// copies, not formatting and escaping. Ids and messages are stored raw,
// so a query for one invocation can still skip a shared batch that does
// not contain its id unparsed. Batches written before (NDJSON, one Entry
// a line, or a single Entry) start with '{' and still read.
const batchMagic = "\x00gl2"

const (
	streamStdout byte = iota
	streamStderr
	streamGust
	streamOther
)

// appendBatchHeader starts a batch of function's lines.
func appendBatchHeader(b []byte, function string) []byte {
	b = append(b, batchMagic...)
	return appendString(b, function)
}

// appendBatchEntry appends e to a batch whose previous entry's time was
// prev (0 for the first), and returns e's time for the next.
func appendBatchEntry(b []byte, e *Entry, prev int64) ([]byte, int64) {
	at := e.Time.UnixNano()
	b = binary.AppendVarint(b, at-prev)
	b = binary.AppendUvarint(b, uint64(e.Version))
	switch e.Stream {
	case "stdout":
		b = append(b, streamStdout)
	case "stderr":
		b = append(b, streamStderr)
	case StreamGust:
		b = append(b, streamGust)
	default:
		b = append(b, streamOther)
		b = appendString(b, e.Stream)
	}
	b = appendString(b, e.Invocation)
	return appendString(b, e.Message), at
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// batchEntrySize bounds what appendBatchEntry adds for e.
func batchEntrySize(e *Entry) int {
	return 4*binary.MaxVarintLen64 + 1 + len(e.Stream) + len(e.Invocation) + len(e.Message)
}

var errBadBatch = errors.New("malformed log batch")

// eachBatchEntry calls fn for each entry of a binary batch, in order. The
// Entry's strings are copies: fn may keep them.
func eachBatchEntry(data []byte, fn func(*Entry) error) error {
	data = data[len(batchMagic):]
	function, data, ok := readString(data)
	if !ok {
		return errBadBatch
	}
	var at int64
	for len(data) > 0 {
		d, n := binary.Varint(data)
		if n <= 0 {
			return errBadBatch
		}
		data = data[n:]
		at += d
		v, n := binary.Uvarint(data)
		if n <= 0 || len(data) == n {
			return errBadBatch
		}
		st := data[n]
		data = data[n+1:]
		e := Entry{Time: time.Unix(0, at), Function: function, Version: int(v)}
		switch st {
		case streamStdout:
			e.Stream = "stdout"
		case streamStderr:
			e.Stream = "stderr"
		case streamGust:
			e.Stream = StreamGust
		default:
			if e.Stream, data, ok = readString(data); !ok {
				return errBadBatch
			}
		}
		if e.Invocation, data, ok = readString(data); !ok {
			return errBadBatch
		}
		if e.Message, data, ok = readString(data); !ok {
			return errBadBatch
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return nil
}

func readString(data []byte) (string, []byte, bool) {
	l, n := binary.Uvarint(data)
	if n <= 0 || uint64(len(data)-n) < l {
		return "", nil, false
	}
	return string(data[n : n+int(l)]), data[n+int(l):], true
}

// storableTime reports whether t can be stored and served: as Unix
// nanoseconds (years 1678 to 2261), and encoding/json refuses years
// outside 0..9999 anyway.
func storableTime(t time.Time) bool {
	y := t.Year()
	return y > 1678 && y < 2261
}
