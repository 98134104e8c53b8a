package cluster

import (
	"encoding/json"
	"net/http"
)

// NodesResponse is the body of GET /v1/nodes.
type NodesResponse struct {
	Nodes []Member `json:"nodes"`
}

// NodesHandler serves GET /v1/nodes: the live nodes, this one included.
func (c *Cluster) NodesHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ms := c.Members()
		for i := range ms {
			// Internal to forwarding; noise for a reader.
			ms[i].Busy, ms[i].Subject = nil, ""
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(NodesResponse{Nodes: ms})
	})
}
