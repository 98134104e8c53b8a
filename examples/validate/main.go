// Command validate takes in sensor readings, the seed's real-time data
// validation use case. gust checks every reading against the JSON Schema
// in gust.yaml before this code runs, so the handler does no validation
// of its own: a reading that reaches it is well formed, and a bad one was
// answered 400 with the schema's errors without starting the function.
//
//	POST /readings  {"sensor": "greenhouse-1", "time": "2026-01-02T15:04:05Z", "value": 21.5, "unit": "C"}
//	GET  /stats     readings accepted by this instance, by sensor
//
// When a route has auth, gust tells the function who called in the
// X-Gust-Auth-* headers (clients cannot forge them); the answer echoes the
// subject so that can be seen.
//
// Build: gust build . -o validate.wasm
package main

import (
	"encoding/json"
	"net/http"

	"github.com/gustfaas/gust/sdk"
)

type reading struct {
	Sensor string  `json:"sensor"`
	Time   string  `json:"time"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit,omitempty"`
}

// accepted counts readings per sensor on this instance.
var accepted = map[string]int{}

func init() {
	sdk.HandleFunc(handle)
}

func handle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/readings":
		var rd reading
		// The schema already checked the shape; this only fills the struct.
		if err := json.NewDecoder(r.Body).Decode(&rd); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		if rd.Unit == "F" {
			rd.Value = (rd.Value - 32) * 5 / 9
			rd.Unit = "C"
		}
		accepted[rd.Sensor]++
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"accepted": rd,
			"count":    accepted[rd.Sensor],
			"subject":  r.Header.Get("X-Gust-Auth-Subject"),
			"auth":     r.Header.Get("X-Gust-Auth-Method"),
		})
	case "/stats":
		_ = json.NewEncoder(w).Encode(map[string]any{"accepted": accepted})
	default:
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "no such path"})
	}
}

func main() {}
