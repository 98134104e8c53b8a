package logs

// MaxLine is the longest function log line kept whole.
const MaxLine = 8 << 10

// TruncatedMarker ends a line that was cut at MaxLine.
const TruncatedMarker = " …[truncated]"
