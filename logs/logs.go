package logs

import "log/slog"

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
	splitLines(p, func(line string) {
		log.Info(line, "function", function, "version", version, "invocation", invocationID, "stream", stream)
	})
}
