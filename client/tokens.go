package client

import (
	"context"
	"net/http"
	"time"
)

// Token describes an issued API token (never its secret).
type Token struct {
	ID        string    `json:"id"`
	Scope     string    `json:"scope"`
	Functions []string  `json:"functions,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// CreateToken issues a token with scope (admin, deploy, read or invoke),
// limited to functions if any are given, expiring after expires (0: never).
// The secret is returned once and not kept by the server.
func (c *Client) CreateToken(ctx context.Context, scope string, functions []string, expires time.Duration) (string, *Token, error) {
	u, err := c.url("v1", "tokens")
	if err != nil {
		return "", nil, err
	}
	in := map[string]any{"scope": scope, "functions": functions}
	if expires > 0 {
		in["expires"] = expires.String()
	}
	var out struct {
		Token
		Secret string `json:"token"`
	}
	if err := c.doJSON(ctx, http.MethodPost, u, in, &out); err != nil {
		return "", nil, err
	}
	return out.Secret, &out.Token, nil
}

// Tokens lists the issued tokens.
func (c *Client) Tokens(ctx context.Context) ([]Token, error) {
	var out struct {
		Tokens []Token `json:"tokens"`
	}
	if err := c.getJSON(ctx, &out, "v1", "tokens"); err != nil {
		return nil, err
	}
	return out.Tokens, nil
}

// RevokeToken deletes a token.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	u, err := c.url("v1", "tokens", id)
	if err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, u, nil, nil)
}
