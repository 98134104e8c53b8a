package logs

import "bytes"

// MaxLine is the longest function log line kept whole.
const MaxLine = 8 << 10

// TruncatedMarker ends a line that was cut at MaxLine.
const TruncatedMarker = " …[truncated]"

// splitLines calls fn for each non-empty line of p, cut at MaxLine with
// TruncatedMarker.
func splitLines(p []byte, fn func(string)) {
	for len(p) > 0 {
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line, p = p[:i], p[i+1:]
		} else {
			p = nil
		}
		for len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			continue
		}
		if len(line) > MaxLine {
			fn(string(line[:MaxLine]) + TruncatedMarker)
			continue
		}
		fn(string(line))
	}
}
