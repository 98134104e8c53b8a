package async

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/gateway"
	"github.com/gustfaas/gust/httperr"
)

// CETypeWebhook is the CloudEvents type of a webhook delivery.
const CETypeWebhook = "dev.gust.webhook"

// WebhookPrefix is the path prefix every webhook trigger's path starts with.
const WebhookPrefix = "/hooks/"

// WebhookRoute names a delivery's span: one name for every hook, since
// paths are the operator's to choose and span names must stay few.
const WebhookRoute = WebhookPrefix + "{path}"

// Signature headers of the webhook schemes.
const (
	HeaderGitHubSignature = "X-Hub-Signature-256" // "sha256=<hex>"
	HeaderGitHubDelivery  = "X-GitHub-Delivery"   // unique per delivery, kept on redelivery
	HeaderStripeSignature = "Stripe-Signature"    // "t=<unix>,v1=<hex>[,v1=<hex>...]"
	HeaderSignature       = "X-Signature"         // hmac-sha256 scheme: "<hex>"
)

// DefaultWebhookTolerance is how far a stripe signature's timestamp may be
// from now before the delivery is refused as a possible replay.
const DefaultWebhookTolerance = 5 * time.Minute

// maxTolerance is the largest stripe tolerance whose replays a replay store
// that keeps keys for window catches. A signature is good for 2×tolerance
// (its timestamp ± tolerance); its key, stored at the first delivery, must
// outlive the last moment a copy would be accepted, even when the first
// delivery came at the start of that span.
func maxTolerance(window time.Duration) time.Duration { return window / 2 }

// SecretSource gives webhook triggers the values of their signing secrets.
// *secrets.Store implements it. An unknown name is an error (ENOTFOUND).
type SecretSource interface {
	Values(ctx context.Context, names []string) (map[string]string, error)
}

var webhookPathRE = regexp.MustCompile(`^/hooks/[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$`)

func validateWebhook(t gust.Trigger) error {
	w := t.Webhook
	if t.Timezone != "" || t.Filter != "" || t.CatchUp != 0 || t.BatchSize != 0 || t.MaxDeliveries != 0 || t.MaxConcurrency != 0 {
		return gust.Errorf(gust.EINVALID, "timezone, filter, catchUp, batchSize, maxConcurrency and maxDeliveries do not apply to a webhook trigger")
	}
	if len(w.Path) > 256 || !webhookPathRE.MatchString(w.Path) || strings.Contains(w.Path, "/../") || strings.HasSuffix(w.Path, "/..") || strings.Contains(w.Path, "/./") {
		return gust.Errorf(gust.EINVALID, "invalid webhook path %q: want %s followed by segments of letters, digits, '.', '_', '~' and '-'", w.Path, WebhookPrefix)
	}
	if w.Secret == "" {
		return gust.Errorf(gust.EINVALID, "a webhook trigger needs a secret: the name of the secret holding its signing key")
	}
	if err := gust.ValidateSecretName(w.Secret); err != nil {
		return err
	}
	switch w.Scheme {
	case gust.WebhookGitHub, gust.WebhookHMACSHA256:
		if w.Tolerance != 0 {
			return gust.Errorf(gust.EINVALID, "tolerance applies to the stripe scheme only: the %s scheme signs no timestamp", w.Scheme)
		}
	case gust.WebhookStripe:
		if w.Tolerance < 0 {
			return gust.Errorf(gust.EINVALID, "tolerance must not be negative")
		}
	default:
		return gust.Errorf(gust.EINVALID, "invalid webhook scheme %q: want github, stripe or hmac-sha256", w.Scheme)
	}
	return nil
}

// checkTolerance refuses, at deploy, a stripe tolerance longer than the
// replay store covers (see maxTolerance). It is not part of
// validateTrigger, which also vets live versions' triggers at run time: a
// version deployed before this check keeps its webhook, with its
// tolerance cut to what is covered (acceptWebhook).
func checkTolerance(w *gust.WebhookTrigger) error {
	if w == nil || w.Scheme != gust.WebhookStripe {
		return nil
	}
	if most := maxTolerance(DefaultDedupWindow); w.Tolerance.D() > most {
		return gust.Errorf(gust.EINVALID, "tolerance %s is more than replays can be caught for: a signature is good from tolerance before to tolerance after its timestamp, %s in all, but gust keeps the keys it catches replays by for %s (the idempotency window), so the most is %s", w.Tolerance, 2*w.Tolerance.D(), DefaultDedupWindow, most)
	}
	return nil
}

// hookRoute is one live webhook trigger.
type hookRoute struct {
	function string
	index    int
	hook     gust.WebhookTrigger
}

// hookTable maps webhook paths to the live versions' triggers. Deploys
// refuse a path another function's live version has (CheckWebhookPaths),
// but two functions can still claim one (deploys racing each other, a
// rollback to a version that had it): the first by name wins, so routing
// is stable, and the clash is logged.
type hookTable struct {
	mu     sync.RWMutex
	byPath map[string]map[string]hookRoute // path -> function -> route
}

func newHookTable() *hookTable {
	return &hookTable{byPath: map[string]map[string]hookRoute{}}
}

// set replaces the routes of function by those among triggers; it returns
// the paths another function also claims.
func (h *hookTable) set(function string, triggers []gust.Trigger) (clashes []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for path, fns := range h.byPath {
		delete(fns, function)
		if len(fns) == 0 {
			delete(h.byPath, path)
		}
	}
	for i, t := range triggers {
		if t.Webhook == nil || validateTrigger(t) != nil {
			continue
		}
		fns := h.byPath[t.Webhook.Path]
		if fns == nil {
			fns = map[string]hookRoute{}
			h.byPath[t.Webhook.Path] = fns
		}
		if _, dup := fns[function]; dup {
			continue // the first trigger of a function on a path wins
		}
		fns[function] = hookRoute{function: function, index: i, hook: *t.Webhook}
		if len(fns) > 1 {
			clashes = append(clashes, t.Webhook.Path)
		}
	}
	return clashes
}

func (h *hookTable) lookup(path string) (hookRoute, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	fns := h.byPath[path]
	if len(fns) == 0 {
		return hookRoute{}, false
	}
	names := make([]string, 0, len(fns))
	for n := range fns {
		names = append(names, n)
	}
	sort.Strings(names)
	return fns[names[0]], true
}

// WebhookHandler serves `POST /hooks/...`, public: the live versions'
// webhook triggers, each checking its scheme's signature with its secret
// before anything is stored. Mount it at WebhookPrefix.
//
// Answers: 202 with the invocation id (the event then runs as an async
// invocation with Trigger "webhook", as a CloudEvent of type
// dev.gust.webhook with the delivery's own headers), 401 for a missing or
// bad signature or a stripe timestamp outside the tolerance, 404 for a
// path no live version listens on, 405 for another method, 413 for a body
// over the function's limit, 503 when the trigger's secret is not set.
func (a *Async) WebhookHandler() http.Handler { return http.HandlerFunc(a.serveWebhook) }

func (a *Async) serveWebhook(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httperr.WriteJSON(w, http.StatusMethodNotAllowed, httperr.Body{Error: "webhooks are delivered by POST", Code: gust.EINVALID})
		return
	}
	r, span := a.cfg.Tracer.StartRequest(r, WebhookRoute)
	res, err := a.acceptWebhook(r)
	if err != nil {
		httperr.Write(w, r, err)
		span.End(httperr.Status(gust.ErrorCode(err)), "", 0, "")
		return
	}
	writeAccepted(w, res)
	span.End(http.StatusAccepted, res.function, res.version, res.ID)
}

func (a *Async) acceptWebhook(r *http.Request) (*Accepted, error) {
	ctx := r.Context()
	route, ok := a.hooks.lookup(r.URL.Path)
	if !ok {
		return nil, gust.Errorf(gust.ENOTFOUND, "no webhook at %s", r.URL.Path)
	}
	v, err := a.cfg.Invoker.Resolve(ctx, route.function, "")
	if err != nil {
		return nil, err
	}
	body, release, err := a.readBody(r, v, WebhookPrefix)
	if err != nil {
		return nil, err
	}
	defer release()

	if a.cfg.Secrets == nil {
		a.log.Error("webhook refused: no secret source configured", "path", route.hook.Path, "function", route.function)
		return nil, gust.Errorf(gust.EUNAVAILABLE, "webhook %s is not configured", route.hook.Path)
	}
	vals, err := a.cfg.Secrets.Values(ctx, []string{route.hook.Secret})
	key, found := vals[route.hook.Secret]
	if err != nil || !found || key == "" {
		// The sender cannot fix this; the operator reads the log.
		a.log.Error("webhook refused: its secret cannot be read", "path", route.hook.Path, "function", route.function, "secret", route.hook.Secret, "err", err)
		return nil, gust.Errorf(gust.EUNAVAILABLE, "webhook %s is not configured", route.hook.Path)
	}
	hook := route.hook
	if most := maxTolerance(a.cfg.DedupWindow); hook.Scheme == gust.WebhookStripe && hook.Tolerance.D() > most {
		// Deploys refuse more than the default window covers; a node
		// configured with a shorter window accepts no more than it covers.
		hook.Tolerance = gust.Duration(most)
	}
	replayKey, err := verifySignature(hook, r.Header, body, []byte(key), a.now())
	if err != nil {
		a.log.Info("webhook signature refused", "path", route.hook.Path, "function", route.function, "err", gust.ErrorMessage(err))
		return nil, err
	}

	id := a.cfg.NewID()
	// A delivery the sender repeats (GitHub redelivers with the same
	// X-GitHub-Delivery; a replayed stripe signature is the same t and
	// v1) answers the first invocation's id and runs nothing new.
	if replayKey == "" {
		replayKey = r.Header.Get(HeaderIdempotencyKey)
	}
	if len(replayKey) > maxIdempotencyKey {
		replayKey = ""
	}
	if replayKey != "" {
		first, claimed, err := a.claimIdempotencyKey(ctx, route.function, "webhook:"+route.hook.Path+":"+replayKey, id)
		if err != nil {
			return nil, err
		}
		if !claimed {
			acc := a.repeated(ctx, first)
			acc.function, acc.version = route.function, v.Number
			return acc, nil
		}
	}

	now := a.now()
	header := gateway.ForwardHeader(r)
	header.Del(HeaderCallbackURL)
	header.Del(HeaderInvocationID)
	for k, vs := range ceHeader(CETypeWebhook, route.hook.Path, id, "", "", now) {
		header[k] = vs
	}
	setCETrace(ctx, header)
	ev := &Event{
		ID: id, Function: route.function, Version: v.Number,
		Method: http.MethodPost, Path: r.URL.Path, Query: r.URL.RawQuery, Header: header,
		Trigger: "webhook", AcceptedAt: now, Body: body,
	}
	if _, err := a.store(ev, ""); err != nil {
		if replayKey != "" {
			_ = a.idem.Delete(context.WithoutCancel(ctx), idemStoreKey(route.function, "webhook:"+route.hook.Path+":"+replayKey))
		}
		return nil, err
	}
	return &Accepted{ID: id, Status: StatusQueued, function: route.function, version: v.Number}, nil
}

// verifySignature checks a delivery against its scheme with key. It
// returns a key that identifies the delivery for replay detection ("" if
// the scheme has none). Errors: EUNAUTHORIZED, saying what is wrong but
// never what was expected.
func verifySignature(hook gust.WebhookTrigger, h http.Header, body, key []byte, now time.Time) (string, error) {
	switch hook.Scheme {
	case gust.WebhookGitHub:
		sig, ok := strings.CutPrefix(h.Get(HeaderGitHubSignature), "sha256=")
		if !ok || sig == "" {
			return "", gust.Errorf(gust.EUNAUTHORIZED, "missing %s header (sha256=<hex HMAC of the body>)", HeaderGitHubSignature)
		}
		if !hmacEqual(key, sig, body) {
			return "", gust.Errorf(gust.EUNAUTHORIZED, "bad webhook signature")
		}
		return h.Get(HeaderGitHubDelivery), nil
	case gust.WebhookHMACSHA256:
		sig := strings.TrimSpace(h.Get(HeaderSignature))
		if sig == "" {
			return "", gust.Errorf(gust.EUNAUTHORIZED, "missing %s header (<hex HMAC-SHA256 of the body>)", HeaderSignature)
		}
		if !hmacEqual(key, sig, body) {
			return "", gust.Errorf(gust.EUNAUTHORIZED, "bad webhook signature")
		}
		return "", nil
	case gust.WebhookStripe:
		var ts string
		var sigs []string
		for _, part := range strings.Split(h.Get(HeaderStripeSignature), ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			switch k {
			case "t":
				ts = v
			case "v1":
				sigs = append(sigs, v)
			}
		}
		if ts == "" || len(sigs) == 0 {
			return "", gust.Errorf(gust.EUNAUTHORIZED, "missing or malformed %s header (t=<unix time>,v1=<hex HMAC>)", HeaderStripeSignature)
		}
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return "", gust.Errorf(gust.EUNAUTHORIZED, "malformed timestamp in %s", HeaderStripeSignature)
		}
		tol := hook.Tolerance.D()
		if tol <= 0 {
			tol = DefaultWebhookTolerance
		}
		// Check the signature first so an unsigned request learns nothing
		// about the clock.
		signed := make([]byte, 0, len(ts)+1+len(body))
		signed = append(append(append(signed, ts...), '.'), body...)
		// The replay key is the signature's bytes, not its text: hex
		// decodes either case, so "v1=ABCD..." is the same signature as
		// "v1=abcd..." and must not pass as a new delivery.
		match := ""
		for _, s := range sigs {
			if hmacEqual(key, s, signed) {
				b, _ := hex.DecodeString(s)
				match = hex.EncodeToString(b)
			}
		}
		if match == "" {
			return "", gust.Errorf(gust.EUNAUTHORIZED, "bad webhook signature")
		}
		if d := now.Sub(time.Unix(sec, 0)); d > tol || d < -tol {
			return "", gust.Errorf(gust.EUNAUTHORIZED, "webhook timestamp is outside the tolerance of %s", tol)
		}
		return ts + "." + match, nil
	}
	return "", gust.Errorf(gust.EUNAUTHORIZED, "unknown webhook scheme %q", hook.Scheme)
}

// hmacEqual reports whether hexSig is the HMAC-SHA256 of msg with key,
// comparing in constant time.
func hmacEqual(key []byte, hexSig string, msg []byte) bool {
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return hmac.Equal(got, m.Sum(nil))
}

// SignHMACSHA256 returns the hex HMAC-SHA256 of msg with key: the value of
// X-Signature (hmac-sha256), of X-Hub-Signature-256 after "sha256="
// (github), and of v1 over "t.body" (stripe). Senders and tests use it.
func SignHMACSHA256(key, msg []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return hex.EncodeToString(m.Sum(nil))
}

// CheckWebhookPaths refuses, at the deploy of function name, a spec with a
// webhook path that another function's live version uses: the path is that
// function's until it gives it up, and a deploy scoped to one function
// must not take another's deliveries. Only functions other than name are
// compared, so a function may redeploy its own paths. Deploys racing each
// other can still both pass; the routing then stays with the first
// function by name (see hookTable). Errors: ECONFLICT naming the other
// function; a registry error as it came.
func CheckWebhookPaths(ctx context.Context, reg gust.Registry, name string, spec gust.Spec) error {
	want := map[string]bool{}
	for _, t := range spec.Triggers {
		if t.Webhook != nil {
			want[t.Webhook.Path] = true
		}
	}
	if len(want) == 0 {
		return nil
	}
	fns, err := reg.Functions(ctx)
	if err != nil {
		return fmt.Errorf("checking webhook paths: %w", err)
	}
	for _, fn := range fns {
		if fn.Name == name || fn.Live == 0 {
			continue
		}
		v, err := reg.Version(ctx, fn.Name, fn.Live)
		if gust.ErrorCode(err) == gust.ENOTFOUND {
			continue // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("checking webhook paths: %w", err)
		}
		for _, t := range v.Spec.Triggers {
			if t.Webhook != nil && want[t.Webhook.Path] {
				return gust.Errorf(gust.ECONFLICT, "webhook path %s is taken by function %s (its live version %d): remove it there first, or choose another path", t.Webhook.Path, fn.Name, fn.Live)
			}
		}
	}
	return nil
}
