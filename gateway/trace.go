package gateway

import (
	"net/http"

	"github.com/gustfaas/gust"
)

// Route is the gateway's route as traces name it: span names carry the
// pattern, never the function name, so they stay few.
const Route = Prefix + "{name}"

// serveTraced serves r inside the gateway's server span. The span learns
// the status and the resolved version through a tracedWriter, so the
// untraced path pays nothing for it. StartGateway, not StartServer: serve
// builds each function request a header map of its own (forwardHeader),
// which the tracer may then change in place.
func (g *Gateway) serveTraced(w http.ResponseWriter, r *http.Request) {
	ctx, span := g.cfg.Tracer.StartGateway(r, Route)
	tw := &tracedWriter{ResponseWriter: w, status: http.StatusOK}
	g.serve(ctx, tw, r)
	id := w.Header().Get(HeaderInvocationID)
	if tw.v != nil {
		span.End(tw.status, tw.v.Function, tw.v.Number, id)
	} else {
		span.End(tw.status, "", 0, id)
	}
}

// tracedWriter remembers the status written and the version resolved.
type tracedWriter struct {
	http.ResponseWriter
	status  int
	written bool
	v       *gust.Version
}

func (w *tracedWriter) WriteHeader(status int) {
	if !w.written {
		w.status, w.written = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *tracedWriter) Write(p []byte) (int, error) {
	w.written = true
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *tracedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// noteVersion tells a traced request which version it resolved to.
func noteVersion(w http.ResponseWriter, v *gust.Version) {
	if tw, ok := w.(*tracedWriter); ok {
		tw.v = v
	}
}
