package client

import (
	"context"
	"time"
)

// Node is one live gust node of a cluster, as GET /v1/nodes lists it.
type Node struct {
	ID             string    `json:"id"`
	Address        string    `json:"address"`
	Version        string    `json:"version"`
	InFlight       int       `json:"inFlight"`
	Instances      int       `json:"instances"`
	MemoryUsedMB   int       `json:"memoryUsedMB"`
	MemoryBudgetMB int       `json:"memoryBudgetMB"`
	Started        time.Time `json:"started"`
	LastSeen       time.Time `json:"lastSeen"`
	Self           bool      `json:"self,omitempty"`
}

// Nodes lists the live nodes of the cluster the server belongs to, the
// answering node (Self) included.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var out struct {
		Nodes []Node `json:"nodes"`
	}
	if err := c.getJSON(ctx, &out, "v1", "nodes"); err != nil {
		return nil, err
	}
	return out.Nodes, nil
}
