package client

import (
	"bytes"
	"context"
	"net/http"
	"time"
)

// SecretInfo describes a secret; values never leave the server.
type SecretInfo struct {
	Name      string    `json:"name"`
	KeyID     string    `json:"keyId"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// SetSecret stores value under name, encrypted at rest.
func (c *Client) SetSecret(ctx context.Context, name string, value []byte) (*SecretInfo, error) {
	u, err := c.url("v1", "secrets", name)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, http.MethodPut, u, bytes.NewReader(value), "application/octet-stream")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var info SecretInfo
	return &info, decode(resp, &info)
}

// Secrets lists the secrets' names and key ids.
func (c *Client) Secrets(ctx context.Context) ([]SecretInfo, error) {
	var out struct {
		Secrets []SecretInfo `json:"secrets"`
	}
	if err := c.getJSON(ctx, &out, "v1", "secrets"); err != nil {
		return nil, err
	}
	return out.Secrets, nil
}

// SecretUse is a version that needs a secret and that an alias (live or
// another) points to.
type SecretUse struct {
	Function string   `json:"function"`
	Version  int      `json:"version"`
	Aliases  []string `json:"aliases"`
	As       []string `json:"as"` // "env", "webhook PATH", "jwt route ROUTE"
}

// DeleteSecret removes a secret that no aliased version uses. Errors:
// ENOTFOUND, ECONFLICT naming the versions that use it.
func (c *Client) DeleteSecret(ctx context.Context, name string) error {
	_, err := c.RemoveSecret(ctx, name, false)
	return err
}

// RemoveSecret removes a secret. Without force a secret that a version
// an alias points to uses is refused with ECONFLICT naming them; with
// force it is removed anyway and the versions that will now answer 503
// are returned. Errors: ENOTFOUND, ECONFLICT.
func (c *Client) RemoveSecret(ctx context.Context, name string, force bool) ([]SecretUse, error) {
	u, err := c.url("v1", "secrets", name)
	if err != nil {
		return nil, err
	}
	if force {
		u += "?force=true"
	}
	var out struct {
		Failing []SecretUse `json:"failing"`
	}
	resp, err := c.do(ctx, http.MethodDelete, u, nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent { // an older server
		return nil, nil
	}
	if err := decode(resp, &out); err != nil {
		return nil, err
	}
	return out.Failing, nil
}

// RotateSecretKey makes a new master key and re-encrypts every secret.
func (c *Client) RotateSecretKey(ctx context.Context) (keyID string, reencrypted int, err error) {
	u, err := c.url("v1", "secrets", "rotate-key")
	if err != nil {
		return "", 0, err
	}
	var out struct {
		KeyID       string `json:"keyId"`
		Reencrypted int    `json:"reencrypted"`
	}
	if err := c.doJSON(ctx, http.MethodPost, u, nil, &out); err != nil {
		return "", 0, err
	}
	return out.KeyID, out.Reencrypted, nil
}
