package client_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/stats"
)

// TestStats speaks to the real stats handlers, so the client's copies of
// the JSON shapes cannot drift from the server's.
func TestStats(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 30, 0, time.UTC)
	st := stats.New(stats.Config{Now: func() time.Time { return now }})
	st.Record(&gust.Invocation{Function: "hello", Start: now.Add(-2 * time.Second), Duration: 3 * time.Millisecond, Status: gust.StatusOK, Cold: true})
	st.Record(&gust.Invocation{Function: "hello", Start: now.Add(-2 * time.Second), Status: gust.StatusThrottled})
	mux := http.NewServeMux()
	for p, h := range st.Routes() {
		mux.Handle(p, h)
	}
	srv := newServer(t, mux.ServeHTTP)
	c := client.New(srv.URL, "tok")
	ctx := context.Background()

	ser, err := c.FunctionStats(ctx, "hello", time.Minute, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r := srv.last(t); r.Path != "/v1/functions/hello/stats" || r.Query != "step=10s&window=1m0s" || r.Auth != "Bearer tok" {
		t.Fatalf("request = %+v", r)
	}
	if len(ser.Points) != 6 || ser.Points[4].Invocations != 1 || ser.Points[4].ColdStarts != 1 || ser.Points[4].Throttles != 1 || ser.Points[4].P99Ms <= 0 {
		t.Fatalf("series = %+v", ser)
	}
	sum, err := c.Stats(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Functions) != 1 || sum.Functions[0].Function != "hello" || sum.Window != "1m0s" || sum.Functions[0].Invocations != 1 {
		t.Fatalf("summary = %+v", sum)
	}
	if _, err := c.Stats(ctx, 2*time.Hour); gust.ErrorCode(err) != gust.EINVALID {
		t.Fatalf("2h window: %v, want EINVALID", err)
	}
}
