package async

import (
	"net/http"
	"time"
)

// CloudEvents 1.0 types of gust's event sources.
const (
	CETypeCron   = "dev.gust.cron"
	CETypeNATS   = "dev.gust.nats.message"
	CETypeStream = "dev.gust.stream.message"
)

// ceHeader returns the headers of a CloudEvent in HTTP binary mode: the
// attributes as ce- headers, the data as the body. Header names are
// lowercase on the wire, as the binding's examples write them; Go
// canonicalizes them for functions that read them from an http.Header.
func ceHeader(typ, source, id, subject, contentType string, t time.Time) http.Header {
	h := http.Header{}
	h.Set("ce-specversion", "1.0")
	h.Set("ce-type", typ)
	h.Set("ce-source", source)
	h.Set("ce-id", id)
	h.Set("ce-time", t.UTC().Format(time.RFC3339Nano))
	if subject != "" {
		h.Set("ce-subject", subject)
	}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return h
}
