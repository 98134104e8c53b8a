package logs

import (
	"bytes"
	"log/slog"
)

// MaxLine is the longest function log line kept whole.
const MaxLine = 8 << 10

// TruncatedMarker ends a line that was cut at MaxLine.
const TruncatedMarker = " …[truncated]"

// SlogSink writes function output to a slog.Logger at Info level with the
// attributes function, version, invocation and stream.
type SlogSink struct {
	Logger *slog.Logger
}

// FunctionLog implements gust.LogSink.
func (s SlogSink) FunctionLog(function string, version int, invocationID, stream string, p []byte) {
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	for len(p) > 0 {
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line, p = p[:i], p[i+1:]
		} else {
			p = nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			continue
		}
		msg := string(line)
		if len(line) > MaxLine {
			msg = string(line[:MaxLine]) + TruncatedMarker
		}
		log.Info(msg, "function", function, "version", version, "invocation", invocationID, "stream", stream)
	}
}
