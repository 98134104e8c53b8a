package client

import (
	"context"
	"net/http"
	"time"
)

// APIKey describes an API key of a function's routes (never its secret).
type APIKey struct {
	ID        string    `json:"id"`
	Function  string    `json:"function"`
	Route     string    `json:"route,omitempty"` // "": every api-key route of the function
	CreatedAt time.Time `json:"createdAt"`
}

// CreateAPIKey issues a key for function's routes with auth: api-key,
// limited to the route with ID route if not empty. The secret is returned
// once and not kept by the server.
func (c *Client) CreateAPIKey(ctx context.Context, function, route string) (string, *APIKey, error) {
	u, err := c.url("v1", "functions", function, "keys")
	if err != nil {
		return "", nil, err
	}
	var out struct {
		APIKey
		Secret string `json:"key"`
	}
	if err := c.doJSON(ctx, http.MethodPost, u, map[string]string{"route": route}, &out); err != nil {
		return "", nil, err
	}
	return out.Secret, &out.APIKey, nil
}

// APIKeys lists the keys of function.
func (c *Client) APIKeys(ctx context.Context, function string) ([]APIKey, error) {
	var out struct {
		Keys []APIKey `json:"keys"`
	}
	if err := c.getJSON(ctx, &out, "v1", "functions", function, "keys"); err != nil {
		return nil, err
	}
	return out.Keys, nil
}

// RevokeAPIKey deletes a key of function at once.
func (c *Client) RevokeAPIKey(ctx context.Context, function, id string) error {
	u, err := c.url("v1", "functions", function, "keys", id)
	if err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, u, nil, nil)
}
