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

// DeleteSecret removes a secret.
func (c *Client) DeleteSecret(ctx context.Context, name string) error {
	u, err := c.url("v1", "secrets", name)
	if err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, u, nil, nil)
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
