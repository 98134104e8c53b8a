package stats

import (
	"net/http"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/httperr"
)

// Defaults of the HTTP queries.
const (
	DefaultWindow        = 15 * time.Minute
	DefaultSummaryWindow = time.Minute
)

// SeriesBody is the answer of GET /v1/functions/{name}/stats.
type SeriesBody struct {
	Function string  `json:"function"`
	Window   string  `json:"window"`
	Step     string  `json:"step"`
	Points   []Point `json:"points"`
}

// SummaryBody is the answer of GET /v1/stats.
type SummaryBody struct {
	Window    string    `json:"window"`
	Time      time.Time `json:"time"`
	Functions []Summary `json:"functions"`
}

// Routes returns the stats routes for the admin API's Extra map; the
// caller mounts them behind authentication.
//
//	GET /v1/functions/{name}/stats?window=15m&step=10s
//	GET /v1/stats?window=1m
func (s *Stats) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /v1/functions/{name}/stats": http.HandlerFunc(s.serveSeries),
		"GET /v1/stats":                  http.HandlerFunc(s.serveSummaries),
	}
}

// serveSeries answers a function's series. step defaults to a sixtieth of
// the window (at least 1s), about the resolution a chart can show.
func (s *Stats) serveSeries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	window, err := durationParam(q.Get("window"), "window", DefaultWindow)
	if err != nil {
		httperr.Write(w, r, err)
		return
	}
	step, err := durationParam(q.Get("step"), "step", max(time.Second, (window/60).Truncate(time.Second)))
	if err != nil {
		httperr.Write(w, r, err)
		return
	}
	name := r.PathValue("name")
	pts, err := s.Series(name, window, step)
	if err != nil {
		httperr.Write(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httperr.WriteJSON(w, http.StatusOK, SeriesBody{Function: name, Window: window.String(), Step: step.String(), Points: pts})
}

func (s *Stats) serveSummaries(w http.ResponseWriter, r *http.Request) {
	window, err := durationParam(r.URL.Query().Get("window"), "window", DefaultSummaryWindow)
	if err != nil {
		httperr.Write(w, r, err)
		return
	}
	sums, err := s.Summaries(window)
	if err != nil {
		httperr.Write(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httperr.WriteJSON(w, http.StatusOK, SummaryBody{Window: window.String(), Time: s.now().UTC(), Functions: sums})
}

func durationParam(v, name string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, gust.Errorf(gust.EINVALID, "invalid %s %q: want a duration such as 15m or 10s", name, v)
	}
	return d, nil
}
