package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gustfaas/gust"
)

// maxErrorBody bounds how much of an error response is read: an error is a
// short JSON document, and a misbehaving proxy must not make us buffer more.
const maxErrorBody = 1 << 20

// Client calls one gust server. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// Option changes how New builds a Client.
type Option func(*Client)

// WithHTTPClient makes the Client send requests with hc instead of
// http.DefaultClient, e.g. for a custom transport or an overall timeout:
//
//	client.New(u, tok, client.WithHTTPClient(&http.Client{Timeout: time.Minute}))
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// New returns a client of the server at baseURL (such as
// "http://127.0.0.1:8080") that authenticates with token. A baseURL that
// does not parse makes every call fail with EINVALID, so New itself never
// fails and can be used in one expression.
func New(baseURL, token string, opts ...Option) *Client {
	c := &Client{token: token, http: http.DefaultClient}
	if u, err := url.Parse(strings.TrimRight(baseURL, "/")); err == nil && u.Scheme != "" && u.Host != "" {
		c.base = u
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// BaseURL returns the server address the client was built with.
func (c *Client) BaseURL() string {
	if c.base == nil {
		return ""
	}
	return c.base.String()
}

// url joins the base URL with segments, escaping each one, so a function
// name can never climb out of its route.
func (c *Client) url(segments ...string) (string, error) {
	if c.base == nil {
		return "", gust.Errorf(gust.EINVALID, "invalid server URL: want an absolute URL such as http://127.0.0.1:8080")
	}
	u := *c.base
	var plain, escaped strings.Builder
	for _, s := range segments {
		plain.WriteString("/" + s)
		escaped.WriteString("/" + url.PathEscape(s))
	}
	u.RawPath = c.base.EscapedPath() + escaped.String()
	u.Path = c.base.Path + plain.String()
	return u.String(), nil
}

// do sends a request and returns the response if its status is 2xx, or the
// decoded *gust.Error otherwise.
func (c *Client) do(ctx context.Context, method, u string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, DecodeError(resp)
	}
	return resp, nil
}

// send is the one place transport failures are classified: a server that
// does not answer is EUNAVAILABLE so a caller can say "is gust running?",
// while a cancelled context stays the context's error.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), ctxErr)
		}
		return nil, gust.WrapError(gust.EUNAVAILABLE, err, "cannot reach gust at %s", c.BaseURL())
	}
	return resp, nil
}

// DecodeError turns an error response into a *gust.Error. The JSON error
// shape keeps the server's code and message; any other body (a proxy's
// HTML page, plain text) becomes EINTERNAL with the status and the text, so
// the user sees what actually answered. It reads at most 1 MiB of the body
// and does not close it.
func DecodeError(resp *http.Response) error {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return gust.WrapError(gust.EINTERNAL, err, "read error response (HTTP %s)", resp.Status)
	}
	if e := parseError(data); e != nil {
		return e
	}
	text := strings.TrimSpace(string(data))
	if text == "" {
		return gust.Errorf(gust.EINTERNAL, "HTTP %s", resp.Status)
	}
	const maxText = 512
	if len(text) > maxText {
		text = text[:maxText] + "..."
	}
	return gust.Errorf(gust.EINTERNAL, "HTTP %s: %s", resp.Status, text)
}

// errorBody is the JSON error shape of DESIGN.md.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// parseError returns the *gust.Error data holds, or nil if data is not the
// JSON error shape.
func parseError(data []byte) *gust.Error {
	var eb errorBody
	if err := json.Unmarshal(data, &eb); err != nil || (eb.Code == "" && eb.Error == "") {
		return nil
	}
	if eb.Code == "" {
		eb.Code = gust.EINTERNAL
	}
	if eb.Error == "" {
		eb.Error = eb.Code
	}
	return &gust.Error{Code: eb.Code, Message: eb.Error}
}

// codes are the application codes of package gust: a JSON error body
// whose code is not one of them is a function's own answer.
var codes = map[string]bool{
	gust.ENOTFOUND: true, gust.EINVALID: true, gust.ECONFLICT: true,
	gust.ETOOLARGE: true, gust.ETHROTTLED: true, gust.ECAPACITY: true,
	gust.ETIMEOUT: true, gust.EOOM: true, gust.EFUNCTION: true,
	gust.EUNAUTHORIZED: true, gust.EFORBIDDEN: true, gust.EUNAVAILABLE: true,
	gust.EINTERNAL: true,
}

// InvokeError tells gust's own error answer to an invocation (unknown
// function, throttled, timed out...) from an answer the function gave,
// which may be an error status too. For a 4xx or 5xx response whose JSON
// body is gust's error shape with a known code it returns that *gust.Error.
// Otherwise err is nil and body yields the whole response body unchanged
// (what was read to decide, then the rest), for the caller to pass on. It
// reads at most 1 MiB before deciding and does not close resp.Body.
func InvokeError(resp *http.Response) (body io.Reader, err error) {
	if resp.StatusCode < 400 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return resp.Body, nil
	}
	head, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if rerr != nil {
		return nil, gust.WrapError(gust.EINTERNAL, rerr, "read response (HTTP %s)", resp.Status)
	}
	if e := parseError(head); e != nil && codes[e.Code] {
		return nil, e
	}
	return io.MultiReader(bytes.NewReader(head), resp.Body), nil
}

func (c *Client) getJSON(ctx context.Context, out any, segments ...string) error {
	u, err := c.url(segments...)
	if err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodGet, u, nil, out)
}

// doJSON sends in (if not nil) as a JSON body and decodes the answer into
// out (if not nil).
func (c *Client) doJSON(ctx context.Context, method, u string, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.do(ctx, method, u, body, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decode(resp, out)
}

func decode(resp *http.Response, out any) error {
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return gust.WrapError(gust.EINTERNAL, err, "decode response of %s %s", resp.Request.Method, resp.Request.URL.Path)
	}
	return nil
}

// Functions lists every function, sorted by name.
func (c *Client) Functions(ctx context.Context) ([]*gust.Function, error) {
	var out struct {
		Functions []*gust.Function `json:"functions"`
	}
	if err := c.getJSON(ctx, &out, "v1", "functions"); err != nil {
		return nil, err
	}
	return out.Functions, nil
}

// Function returns one function. Errors: ENOTFOUND.
func (c *Client) Function(ctx context.Context, name string) (*gust.Function, error) {
	var f gust.Function
	if err := c.getJSON(ctx, &f, "v1", "functions", name); err != nil {
		return nil, err
	}
	return &f, nil
}

// Delete removes a function with its versions and aliases. Errors: ENOTFOUND.
func (c *Client) Delete(ctx context.Context, name string) error {
	u, err := c.url("v1", "functions", name)
	if err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, u, nil, nil)
}

// Deploy uploads code as a new version of name with spec and makes it live.
// codeName is the artifact's file name (only its base name is sent). The
// code is streamed, not buffered, so large artifacts cost no client memory.
// Errors: EINVALID (bad name, spec or code), ECONFLICT.
func (c *Client) Deploy(ctx context.Context, name string, spec gust.Spec, codeName string, code io.Reader) (*gust.Version, error) {
	return c.DeployWithFiles(ctx, name, spec, codeName, code, nil)
}

// DeployWithFiles is Deploy for a function that declares files: files is
// the tar archive of its directory (see TarDir), sent as the upload's
// "files" part. The server records the archive's digest in the version's
// spec. A nil files is Deploy.
func (c *Client) DeployWithFiles(ctx context.Context, name string, spec gust.Spec, codeName string, code io.Reader, files []byte) (*gust.Version, error) {
	d, err := c.DeployDetailed(ctx, name, spec, codeName, code, files)
	if err != nil {
		return nil, err
	}
	return &d.Version, nil
}

// Deployed is the answer to a deploy: the version made, and whether it is
// live (of concurrent deploys, the newest version ends up live).
type Deployed struct {
	gust.Version
	// Live is nil when the server does not say (one older than this
	// client): it made the version live.
	Live        *bool `json:"live,omitempty"`
	LiveVersion int   `json:"liveVersion,omitempty"`
}

// IsLive reports whether the deploy made its version live.
func (d *Deployed) IsLive() bool { return d.Live == nil || *d.Live }

// DeployDetailed is DeployWithFiles, answering also whether the version
// is live.
func (c *Client) DeployDetailed(ctx context.Context, name string, spec gust.Spec, codeName string, code io.Reader, files []byte) (*Deployed, error) {
	u, err := c.url("v1", "functions", name, "versions")
	if err != nil {
		return nil, err
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	base := filepath.Base(codeName)
	if base == "." || base == string(filepath.Separator) {
		base = "code"
	}

	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	src := &readErr{r: code}
	go func() {
		// The pipe ends when the transport stops reading (it closes the
		// request body on any failure), so this goroutine cannot outlive
		// the request.
		pw.CloseWithError(writeDeployForm(mw, specJSON, base, src, files))
	}()
	resp, err := c.do(ctx, http.MethodPost, u, pr, mw.FormDataContentType())
	// Unblock the writer if the request ended before the body was read.
	_ = pr.Close()
	if rerr := src.Err(); rerr != nil {
		// Reading the artifact failed, which aborted the upload: the read
		// error, not a network one, is what the caller needs to hear.
		if resp != nil {
			resp.Body.Close()
		}
		return nil, fmt.Errorf("deploy %s: read code: %w", name, rerr)
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v Deployed
	if err := decode(resp, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

func writeDeployForm(mw *multipart.Writer, specJSON []byte, codeName string, code io.Reader, files []byte) error {
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", `form-data; name="spec"`)
	h.Set("Content-Type", "application/json")
	sp, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := sp.Write(specJSON); err != nil {
		return err
	}
	cp, err := mw.CreateFormFile("code", codeName)
	if err != nil {
		return err
	}
	if _, err := io.Copy(cp, code); err != nil {
		return err
	}
	if files != nil {
		fp, err := mw.CreateFormFile("files", "files.tar")
		if err != nil {
			return err
		}
		if _, err := fp.Write(files); err != nil {
			return err
		}
	}
	return mw.Close()
}

// readErr remembers the first error its reader returned. It is recorded
// before the pipe carries it to the transport, so once the request has
// failed, Err tells a read failure from a network one without a race.
type readErr struct {
	r   io.Reader
	mu  sync.Mutex
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.mu.Lock()
		if e.err == nil {
			e.err = err
		}
		e.mu.Unlock()
	}
	return n, err
}

func (e *readErr) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// Versions lists a function's versions, oldest first. Errors: ENOTFOUND.
func (c *Client) Versions(ctx context.Context, name string) ([]*gust.Version, error) {
	var out struct {
		Versions []*gust.Version `json:"versions"`
	}
	if err := c.getJSON(ctx, &out, "v1", "functions", name, "versions"); err != nil {
		return nil, err
	}
	return out.Versions, nil
}

// Version returns one version. Errors: ENOTFOUND.
func (c *Client) Version(ctx context.Context, name string, number int) (*gust.Version, error) {
	var v gust.Version
	if err := c.getJSON(ctx, &v, "v1", "functions", name, "versions", fmt.Sprint(number)); err != nil {
		return nil, err
	}
	return &v, nil
}

// Rollback points the live alias wholly at an existing version.
// Errors: ENOTFOUND.
func (c *Client) Rollback(ctx context.Context, name string, number int) (*gust.Function, error) {
	u, err := c.url("v1", "functions", name, "rollback")
	if err != nil {
		return nil, err
	}
	var f gust.Function
	in := struct {
		Version int `json:"version"`
	}{number}
	if err := c.doJSON(ctx, http.MethodPost, u, in, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// SetAlias creates or replaces alias of name with targets. The server
// checks the weights. Errors: ENOTFOUND, EINVALID.
func (c *Client) SetAlias(ctx context.Context, name, alias string, targets []gust.AliasTarget) (*gust.Function, error) {
	u, err := c.url("v1", "functions", name, "aliases", alias)
	if err != nil {
		return nil, err
	}
	var f gust.Function
	in := struct {
		Targets []gust.AliasTarget `json:"targets"`
	}{targets}
	if err := c.doJSON(ctx, http.MethodPut, u, in, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// DeleteAlias removes an alias other than live. Errors: ENOTFOUND, EINVALID.
func (c *Client) DeleteAlias(ctx context.Context, name, alias string) (*gust.Function, error) {
	u, err := c.url("v1", "functions", name, "aliases", alias)
	if err != nil {
		return nil, err
	}
	var f gust.Function
	if err := c.doJSON(ctx, http.MethodDelete, u, nil, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// Status returns the node status document as the server sent it. It is
// kept raw because its fields grow with the server; callers decode what
// they know and can pass the rest through.
func (c *Client) Status(ctx context.Context) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.getJSON(ctx, &raw, "v1", "status"); err != nil {
		return nil, err
	}
	return raw, nil
}

// UsageQuery selects the usage aggregates to report. Zero fields are not
// sent and leave the choice to the server.
type UsageQuery struct {
	Function string
	Since    time.Time
	Until    time.Time
}

// Usage returns the usage aggregates as the server sent them (raw for the
// same reason as Status).
func (c *Client) Usage(ctx context.Context, q UsageQuery) (json.RawMessage, error) {
	u, err := c.url("v1", "usage")
	if err != nil {
		return nil, err
	}
	v := url.Values{}
	if q.Function != "" {
		v.Set("function", q.Function)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	var raw json.RawMessage
	if err := c.doJSON(ctx, http.MethodGet, u, nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// Invoke calls function name synchronously through /fn/NAME and returns
// the response unread, whatever its status, so the caller can stream the
// body (and must close it). name may carry a version or alias the gateway
// understands ("hello@3", "hello@canary"). subPath is the part after
// /fn/NAME and may carry a query ("/items?id=3"). Only a failure to get any
// response is an error; use InvokeError to tell gust's own errors from a
// function's answer.
//
// The admin token is deliberately not sent: the gateway passes request
// headers on to the function, and function code must never see a token
// that can redeploy it. A function that wants credentials gets them in
// header, from the caller.
func (c *Client) Invoke(ctx context.Context, name, method, subPath string, body io.Reader, header http.Header) (*http.Response, error) {
	u, err := c.url("fn", name)
	if err != nil {
		return nil, err
	}
	if subPath != "" {
		// subPath is taken as URL text, as curl takes it: already escaped.
		sub, err := url.Parse(subPath)
		if err != nil || sub.Scheme != "" || sub.Host != "" {
			return nil, gust.Errorf(gust.EINVALID, "invalid path %q: want a path such as /items?id=3", subPath)
		}
		if p := sub.EscapedPath(); p != "" {
			if !strings.HasPrefix(p, "/") {
				p = "/" + p
			}
			u += p
		}
		if sub.RawQuery != "" {
			u += "?" + sub.RawQuery
		}
	}
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, gust.WrapError(gust.EINVALID, err, "invalid invocation request")
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return c.send(req)
}
