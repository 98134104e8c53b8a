package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/httperr"
)

// DefaultMaxCodeBytes bounds an uploaded artifact.
const DefaultMaxCodeBytes = 64 << 20

// Deployer prepares code for deploy and reports node state; the invoker
// implements it.
type Deployer interface {
	// Prepare validates and compiles code (EINVALID if bad).
	Prepare(ctx context.Context, name string, next int, spec gust.Spec, code []byte) (gust.Module, error)
	// Adopt hands a prepared module to the pool of the stored version.
	Adopt(v *gust.Version, predicted int, m gust.Module)
	// Discard closes a prepared module that was not stored.
	Discard(m gust.Module)
	// Stats lists the pools on this node.
	Stats() []gust.PoolStats
	// Reconcile brings pools in step with the registry after a change.
	Reconcile(ctx context.Context)
	// SnapshotState is a version's memory-snapshot state on this node.
	SnapshotState(function string, version int) string
}

// ArchiveStore stores files archives; the registry implements it.
type ArchiveStore interface {
	// PutArchive stores archive and returns its digest.
	PutArchive(ctx context.Context, archive []byte) (digest string, err error)
	// DiscardArchive removes an archive no version uses (one stored by a
	// deploy that then failed).
	DiscardArchive(ctx context.Context, digest string) error
}

// Config configures the API.
type Config struct {
	Registry gust.Registry
	Deployer Deployer
	// Budget reports the node memory budget (total 0: no limit), for
	// /v1/status; a deploy whose memory is over its total is refused.
	Budget func() (totalMB, usedMB int)
	Usage  http.Handler // GET /v1/usage; nil: not mounted
	// Extra maps more route patterns ("GET /v1/...") to handlers, mounted
	// behind Require with their scope like every other route and listed
	// by Routes.
	Extra map[string]Route
	// Require returns the middleware that admits a request whose token
	// has scope (and, on routes with {name}, may act on that function).
	Require func(scope string) func(http.Handler) http.Handler
	// Permits reports whether the principal Require admitted (found in
	// the request's context) has scope on function: nil, or EFORBIDDEN
	// naming what is missing. A deploy asks it for admin scope before it
	// gives a function a secret its previous version did not have. nil:
	// nobody has, so deploys may only keep the secrets a function had.
	Permits func(ctx context.Context, scope, function string) error
	// OnDelete runs after a function is deleted, to drop what belongs to
	// it elsewhere (its API keys ...).
	OnDelete []func(ctx context.Context, name string) error
	// Validate are more checks of a spec at deploy (secrets exist,
	// triggers parse ...), each answering EINVALID naming the problem.
	Validate []func(ctx context.Context, spec gust.Spec) error
	// ValidateNamed are checks that need the function's name too (a
	// webhook path another function already serves ...).
	ValidateNamed []func(ctx context.Context, name string, spec gust.Spec) error
	// Archives stores the files archive a deploy uploads (part "files");
	// nil: deploys with files are refused.
	Archives     ArchiveStore
	MaxCodeBytes int64
	Version      string // gust version, for /v1/status
	Logger       *slog.Logger
}

// API serves /v1.
type API struct {
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	scopes map[string]string // pattern → scope of the built-in routes
}

// New returns the API handler. Every route requires cfg.Require.
func New(cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxCodeBytes == 0 {
		cfg.MaxCodeBytes = DefaultMaxCodeBytes
	}
	a := &API{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), scopes: map[string]string{}}
	a.handle("GET /v1/functions", ScopeRead, a.listFunctions)
	a.handle("GET /v1/functions/{name}", ScopeRead, a.getFunction)
	a.handle("DELETE /v1/functions/{name}", ScopeDeploy, a.deleteFunction)
	a.handle("POST /v1/functions/{name}/versions", ScopeDeploy, a.deploy)
	a.handle("GET /v1/functions/{name}/versions", ScopeRead, a.listVersions)
	a.handle("GET /v1/functions/{name}/versions/{n}", ScopeRead, a.getVersion)
	a.handle("POST /v1/functions/{name}/rollback", ScopeDeploy, a.rollback)
	a.handle("PUT /v1/functions/{name}/aliases/{alias}", ScopeDeploy, a.setAlias)
	a.handle("DELETE /v1/functions/{name}/aliases/{alias}", ScopeDeploy, a.deleteAlias)
	a.handle("GET /v1/status", ScopeRead, a.status)
	if cfg.Usage != nil {
		a.mux.Handle("GET /v1/usage", cfg.Require(ScopeRead)(cfg.Usage))
	}
	for pattern, rt := range cfg.Extra {
		a.mux.Handle(pattern, cfg.Require(rt.Scope)(rt.Handler))
	}
	// Anything else under /v1 is a 404 in the JSON shape, after auth so
	// the route table is not probeable without a token.
	a.mux.Handle("/v1/", cfg.Require(ScopeRead)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httperr.Write(w, r, gust.Errorf(gust.ENOTFOUND, "no API route %s %s", r.Method, r.URL.Path))
	})))
	return a
}

// Scopes a route can require; they match the auth package's.
const (
	ScopeAdmin  = "admin"
	ScopeDeploy = "deploy"
	ScopeRead   = "read"
	ScopeInvoke = "invoke"
)

// Route is an extra admin route and the scope it requires.
type Route struct {
	Scope   string
	Handler http.Handler
}

// Routes maps every registered route pattern to the scope it requires
// (for tests that walk them all).
func (a *API) Routes() map[string]string {
	r := make(map[string]string, len(a.scopes)+len(a.cfg.Extra)+1)
	for p, s := range a.scopes {
		r[p] = s
	}
	if a.cfg.Usage != nil {
		r["GET /v1/usage"] = ScopeRead
	}
	for p, rt := range a.cfg.Extra {
		r[p] = rt.Scope
	}
	return r
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (a *API) handle(pattern, scope string, h handlerFunc) {
	a.scopes[pattern] = scope
	a.mux.Handle(pattern, a.cfg.Require(scope)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			httperr.Write(w, r, err)
		}
	})))
}

func (a *API) listFunctions(w http.ResponseWriter, r *http.Request) error {
	fns, err := a.cfg.Registry.Functions(r.Context())
	if err != nil {
		return err
	}
	if fns == nil {
		fns = []*gust.Function{}
	}
	httperr.WriteJSON(w, http.StatusOK, map[string]any{"functions": fns})
	return nil
}

func (a *API) getFunction(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	fn, err := a.cfg.Registry.Function(r.Context(), name)
	if err != nil {
		return err
	}
	httperr.WriteJSON(w, http.StatusOK, fn)
	return nil
}

func (a *API) deleteFunction(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	if err := a.cfg.Registry.Delete(r.Context(), name); err != nil {
		return err
	}
	for _, f := range a.cfg.OnDelete {
		if err := f(r.Context(), name); err != nil {
			return fmt.Errorf("cleaning up after deleting %s: %w", name, err)
		}
	}
	a.cfg.Deployer.Reconcile(r.Context())
	a.log.Info("function deleted", "function", name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deploy reads a multipart upload (part "spec": JSON gust.Spec; part
// "code": the artifact), validates and compiles it, and only then stores a
// new version. Bad input stores nothing.
func (a *API) deploy(w http.ResponseWriter, r *http.Request) (err error) {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	spec, code, files, err := a.readUpload(r)
	if err != nil {
		return err
	}
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return err
	}
	if err := a.fitsBudget("function "+name, spec.MemoryMB); err != nil {
		return err
	}
	if err := a.minInstancesFit(r.Context(), name, spec); err != nil {
		return err
	}
	if err := a.checkSecrets(r.Context(), name, spec); err != nil {
		return err
	}
	if err := a.storeFiles(r.Context(), &spec, files); err != nil {
		return err
	}
	if files != nil {
		// Bad input stores nothing: an archive this deploy stored goes again
		// if the deploy fails (unless a version already uses the same one).
		digest := spec.Files.Digest
		defer func() {
			if err == nil {
				return
			}
			if derr := a.cfg.Archives.DiscardArchive(r.Context(), digest); derr != nil {
				a.log.Warn("could not remove the files archive of a failed deploy", "function", name, "digest", digest, "err", derr)
			}
		}()
	}
	for _, check := range a.cfg.Validate {
		if err := check(r.Context(), spec); err != nil {
			return err
		}
	}
	for _, check := range a.cfg.ValidateNamed {
		if err := check(r.Context(), name, spec); err != nil {
			return err
		}
	}
	next := 1
	if fn, err := a.cfg.Registry.Function(r.Context(), name); err == nil {
		next = fn.LatestVersion + 1
	}
	m, err := a.cfg.Deployer.Prepare(r.Context(), name, next, spec, code)
	if err != nil {
		if gust.ErrorCode(err) == gust.EINTERNAL {
			return fmt.Errorf("preparing code: %w", err)
		}
		return err
	}
	// Another deploy of the same files that failed meanwhile may have
	// removed the archive (it was not in use yet): store it again before
	// the version is committed and after, as the registry does for code.
	if files != nil {
		if _, err := a.cfg.Archives.PutArchive(r.Context(), files); err != nil {
			a.cfg.Deployer.Discard(m)
			return err
		}
	}
	v, err := a.cfg.Registry.Deploy(r.Context(), name, spec, m.Shape(), code)
	if err != nil {
		a.cfg.Deployer.Discard(m)
		return err
	}
	if files != nil {
		if _, err := a.cfg.Archives.PutArchive(context.WithoutCancel(r.Context()), files); err != nil {
			a.log.Error("could not store the files archive again after the deploy", "function", name, "version", v.Number, "digest", spec.Files.Digest, "err", err)
		}
	}
	a.cfg.Deployer.Adopt(v, next, m)
	a.cfg.Deployer.Reconcile(r.Context())
	out := Deployed{Version: v, Live: true, LiveVersion: v.Number}
	// Concurrent deploys of one function all store their versions, but a
	// deploy that finishes after a newer one leaves live on the newer.
	if fn, err := a.cfg.Registry.Function(r.Context(), name); err == nil {
		out.Live, out.LiveVersion = routesTo(fn.Aliases[gust.AliasLive], v.Number), fn.Live
	}
	a.log.Info("function deployed", "function", name, "version", v.Number, "runtime", spec.Runtime,
		"shape", v.Shape, "digest", v.CodeDigest, "bytes", v.CodeSize, "live", out.Live, "live_version", out.LiveVersion)
	httperr.WriteJSON(w, http.StatusCreated, out)
	return nil
}

// fitsBudget refuses what (a function's spec, or a stored version) whose
// instances need memoryMB, more than this node's whole memory budget: not
// one could ever start, and every call would be refused. Errors: EINVALID
// naming both figures and the flag that sets each.
func (a *API) fitsBudget(what string, memoryMB int) error {
	if a.cfg.Budget == nil {
		return nil
	}
	total, _ := a.cfg.Budget()
	if total <= 0 || memoryMB <= total {
		return nil
	}
	return gust.Errorf(gust.EINVALID, "%s asks for %d MB of memory (--memory), more than this node's whole memory budget of %d MB (gust serve --memory-budget): deploy with --memory %d or less, or restart the server with a larger --memory-budget",
		what, memoryMB, total, total)
}

// minInstancesFit refuses a spec whose provisioned instances, with those
// every other function's live version keeps warm on this node, need more
// than the node's whole memory budget: they could never all be warm, the
// deploy would say "live" while prewarming failed in the log, and calls
// would get 429s that no retry cures. Errors: EINVALID naming the figures.
func (a *API) minInstancesFit(ctx context.Context, name string, spec gust.Spec) error {
	if a.cfg.Budget == nil || spec.MinInstances == 0 {
		return nil
	}
	total, _ := a.cfg.Budget()
	need := spec.MinInstances * spec.MemoryMB
	if total <= 0 {
		return nil
	}
	if need > total {
		return gust.Errorf(gust.EINVALID, "function %s asks for %d provisioned instances (--min-instances) of %d MB each (--memory), %d MB in all, more than this node's whole memory budget of %d MB (gust serve --memory-budget): lower either, or restart the server with a larger --memory-budget",
			name, spec.MinInstances, spec.MemoryMB, need, total)
	}
	fns, err := a.cfg.Registry.Functions(ctx)
	if err != nil {
		return fmt.Errorf("checking provisioned memory: %w", err)
	}
	others, names := 0, []string{}
	for _, fn := range fns {
		if fn.Name == name || fn.Live == 0 {
			continue
		}
		v, err := a.cfg.Registry.Version(ctx, fn.Name, fn.Live)
		if gust.ErrorCode(err) == gust.ENOTFOUND {
			continue // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("checking provisioned memory: %w", err)
		}
		s := v.Spec.WithDefaults()
		if s.MinInstances > 0 {
			others += s.MinInstances * s.MemoryMB
			names = append(names, fmt.Sprintf("%s %d MB", fn.Name, s.MinInstances*s.MemoryMB))
		}
	}
	if need+others > total {
		return gust.Errorf(gust.EINVALID, "function %s asks for %d MB of provisioned instances (--min-instances %d × --memory %d), and other functions keep %d MB warm (%s): %d MB in all, more than this node's memory budget of %d MB (gust serve --memory-budget)",
			name, need, spec.MinInstances, spec.MemoryMB, others, strings.Join(names, ", "), need+others, total)
	}
	return nil
}

// versionsFit refuses to route traffic to a stored version that could not
// be deployed now: one that does not fit this node's memory budget (it was
// deployed before the node restarted with a smaller --memory-budget), or
// fails a ValidateNamed check (a secret it lists was removed since, a
// webhook path it has is now another function's). A version that does not
// exist is left to the registry to report.
func (a *API) versionsFit(ctx context.Context, name string, numbers ...int) error {
	if a.cfg.Budget == nil && len(a.cfg.ValidateNamed) == 0 {
		return nil
	}
	for _, n := range numbers {
		v, err := a.cfg.Registry.Version(ctx, name, n)
		if gust.ErrorCode(err) == gust.ENOTFOUND {
			continue
		}
		if err != nil {
			return err
		}
		if err := a.fitsBudget(fmt.Sprintf("function %s version %d", name, n), v.Spec.WithDefaults().MemoryMB); err != nil {
			return err
		}
		for _, check := range a.cfg.ValidateNamed {
			if err := check(ctx, name, v.Spec); err != nil {
				return gust.WrapError(gust.ErrorCode(err), err, "version %d of %s cannot take traffic: %s", n, name, gust.ErrorMessage(err))
			}
		}
	}
	return nil
}

// Deployed is the answer to a deploy: the new version, and whether the
// live alias routes to it. It does not when a concurrent deploy of a newer
// version finished first: LiveVersion is then that version.
type Deployed struct {
	*gust.Version
	Live        bool `json:"live"`
	LiveVersion int  `json:"liveVersion"`
}

func routesTo(a gust.Alias, version int) bool {
	for _, t := range a.Targets {
		if t.Version == version {
			return true
		}
	}
	return false
}

// checkSecrets refuses a spec that names a secret the function's previous
// version did not have, unless the principal has admin scope. A function
// that gets a secret hands its value to whoever writes its code (it can
// echo its environment), and only an admin may set secrets; a deploy token
// may still redeploy with the secrets an admin's deploy gave the function.
// A secret that only checks signatures (a webhook's or a jwt route's key)
// is held to the same rule, since the function's routes would then answer
// as an oracle for it. Errors: EFORBIDDEN naming the secret and the scope.
func (a *API) checkSecrets(ctx context.Context, name string, spec gust.Spec) error {
	env, keys := secretRefs(spec)
	if len(env) == 0 && len(keys) == 0 {
		return nil
	}
	var why error = gust.Errorf(gust.EFORBIDDEN, "no authenticated token; this needs %q", ScopeAdmin)
	if a.cfg.Permits != nil {
		if why = a.cfg.Permits(ctx, ScopeAdmin, name); why == nil {
			return nil
		}
		if gust.ErrorCode(why) != gust.EFORBIDDEN {
			return why
		}
	}
	prevEnv, prevKeys, err := a.previousSecrets(ctx, name)
	if err != nil {
		return err
	}
	refuse := func(secret string) error {
		return gust.Errorf(gust.EFORBIDDEN, "%s to give function %q secret %q (without it a deploy may only keep the secrets the function's previous version had)",
			gust.ErrorMessage(why), name, secret)
	}
	for _, s := range env {
		if !prevEnv[s] {
			return refuse(s)
		}
	}
	// A key the function already gets as an env variable reveals nothing
	// new when its routes check signatures with it.
	for _, s := range keys {
		if !prevEnv[s] && !prevKeys[s] {
			return refuse(s)
		}
	}
	return nil
}

// previousSecrets returns the secrets the function's latest version and
// the versions its live alias routes to had, as env variables and as
// signature keys. A function that does not exist has none.
func (a *API) previousSecrets(ctx context.Context, name string) (env, keys map[string]bool, err error) {
	env, keys = map[string]bool{}, map[string]bool{}
	fn, err := a.cfg.Registry.Function(ctx, name)
	if gust.ErrorCode(err) == gust.ENOTFOUND {
		return env, keys, nil
	}
	if err != nil {
		return nil, nil, err
	}
	numbers := []int{fn.LatestVersion}
	for _, t := range fn.Aliases[gust.AliasLive].Targets {
		numbers = append(numbers, t.Version)
	}
	for _, n := range numbers {
		v, err := a.cfg.Registry.Version(ctx, name, n)
		if gust.ErrorCode(err) == gust.ENOTFOUND {
			continue // a deploy that never finished left a gap
		}
		if err != nil {
			return nil, nil, err
		}
		e, k := secretRefs(v.Spec)
		for _, s := range e {
			env[s] = true
		}
		for _, s := range k {
			keys[s] = true
		}
	}
	return env, keys, nil
}

// secretRefs splits the secrets spec names into those the function gets
// as env variables and those used as signing keys.
func secretRefs(spec gust.Spec) (env, keys []string) {
	for _, r := range spec.SecretRefs() {
		if r.Key() {
			keys = append(keys, r.Name)
		} else {
			env = append(env, r.Name)
		}
	}
	return env, keys
}

// storeFiles stores the uploaded files archive and records its digest in
// spec. The spec keeps no local path of the uploader's.
func (a *API) storeFiles(ctx context.Context, spec *gust.Spec, files []byte) error {
	if files == nil {
		if spec.Files != nil && spec.Files.Digest == "" {
			return gust.Errorf(gust.EINVALID, "files: the spec declares directory %q but the deploy carries no \"files\" part", spec.Files.Dir)
		}
		if spec.Files != nil {
			f := *spec.Files
			f.Dir = ""
			spec.Files = &f
		}
		return nil
	}
	if spec.Files == nil {
		return gust.Errorf(gust.EINVALID, "the deploy carries a \"files\" part but the spec declares no files")
	}
	if a.cfg.Archives == nil {
		return gust.Errorf(gust.EINVALID, "this server does not accept files archives")
	}
	digest, err := a.cfg.Archives.PutArchive(ctx, files)
	if err != nil {
		return err
	}
	spec.Files = &gust.Files{Digest: digest, Size: int64(len(files))}
	return nil
}

// readUpload reads the parts of a deploy: "spec", "code" and, for a
// function with files, "files" (a tar archive).
func (a *API) readUpload(r *http.Request) (gust.Spec, []byte, []byte, error) {
	var spec gust.Spec
	var files []byte
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return spec, nil, nil, gust.Errorf(gust.EINVALID, "deploy wants a multipart/form-data body with parts \"spec\" and \"code\", got Content-Type %q", r.Header.Get("Content-Type"))
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return spec, nil, nil, gust.WrapError(gust.EINVALID, err, "reading multipart body")
	}
	var code []byte
	var haveSpec, haveCode bool
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return spec, nil, nil, gust.WrapError(gust.EINVALID, err, "reading multipart body")
		}
		switch p.FormName() {
		case "spec":
			dec := json.NewDecoder(io.LimitReader(p, 1<<20))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&spec); err != nil {
				return spec, nil, nil, gust.Errorf(gust.EINVALID, "invalid spec: %v", err)
			}
			haveSpec = true
		case "code":
			var buf bytes.Buffer
			n, err := buf.ReadFrom(io.LimitReader(p, a.cfg.MaxCodeBytes+1))
			if err != nil {
				return spec, nil, nil, gust.WrapError(gust.EINVALID, err, "reading code upload")
			}
			if n > a.cfg.MaxCodeBytes {
				return spec, nil, nil, gust.Errorf(gust.EINVALID, "code upload is over the limit of %d bytes", a.cfg.MaxCodeBytes)
			}
			code = buf.Bytes()
			haveCode = true
		case "files":
			var buf bytes.Buffer
			n, err := buf.ReadFrom(io.LimitReader(p, a.cfg.MaxCodeBytes+1))
			if err != nil {
				return spec, nil, nil, gust.WrapError(gust.EINVALID, err, "reading files upload")
			}
			if n > a.cfg.MaxCodeBytes {
				return spec, nil, nil, gust.Errorf(gust.EINVALID, "files upload is over the limit of %d bytes", a.cfg.MaxCodeBytes)
			}
			files = buf.Bytes()
			if files == nil {
				files = []byte{}
			}
		default:
			return spec, nil, nil, gust.Errorf(gust.EINVALID, "unexpected multipart part %q: want \"spec\", \"code\" and \"files\"", p.FormName())
		}
	}
	if !haveSpec {
		return spec, nil, nil, gust.Errorf(gust.EINVALID, "missing multipart part \"spec\"")
	}
	if !haveCode || len(code) == 0 {
		return spec, nil, nil, gust.Errorf(gust.EINVALID, "missing or empty multipart part \"code\"")
	}
	return spec, code, files, nil
}

func (a *API) listVersions(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	vs, err := a.cfg.Registry.Versions(r.Context(), name)
	if err != nil {
		return err
	}
	if vs == nil {
		vs = []*gust.Version{}
	}
	for _, v := range vs {
		v.Snapshot = a.cfg.Deployer.SnapshotState(v.Function, v.Number)
	}
	httperr.WriteJSON(w, http.StatusOK, map[string]any{"versions": vs})
	return nil
}

func (a *API) getVersion(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 {
		return gust.Errorf(gust.EINVALID, "invalid version %q: want a positive number", r.PathValue("n"))
	}
	v, err := a.cfg.Registry.Version(r.Context(), name, n)
	if err != nil {
		return err
	}
	httperr.WriteJSON(w, http.StatusOK, v)
	return nil
}

func (a *API) rollback(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	var body struct {
		Version int `json:"version"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.Version < 1 {
		return gust.Errorf(gust.EINVALID, "invalid version %d: want a positive number", body.Version)
	}
	if err := a.versionsFit(r.Context(), name, body.Version); err != nil {
		return err
	}
	fn, err := a.cfg.Registry.Rollback(r.Context(), name, body.Version)
	if err != nil {
		return err
	}
	a.cfg.Deployer.Reconcile(r.Context())
	a.log.Info("function rolled back", "function", name, "version", body.Version)
	httperr.WriteJSON(w, http.StatusOK, fn)
	return nil
}

func (a *API) setAlias(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	var body struct {
		Targets []gust.AliasTarget `json:"targets"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	alias := gust.Alias{Name: r.PathValue("alias"), Targets: body.Targets}
	if err := alias.Validate(); err != nil {
		return err
	}
	for _, t := range alias.Targets {
		if err := a.versionsFit(r.Context(), name, t.Version); err != nil {
			return err
		}
	}
	fn, err := a.cfg.Registry.SetAlias(r.Context(), name, alias)
	if err != nil {
		return err
	}
	a.cfg.Deployer.Reconcile(r.Context())
	httperr.WriteJSON(w, http.StatusOK, fn)
	return nil
}

func (a *API) deleteAlias(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	fn, err := a.cfg.Registry.DeleteAlias(r.Context(), name, r.PathValue("alias"))
	if err != nil {
		return err
	}
	a.cfg.Deployer.Reconcile(r.Context())
	httperr.WriteJSON(w, http.StatusOK, fn)
	return nil
}

// Status is the body of GET /v1/status.
type Status struct {
	Version        string           `json:"version"`
	MemoryBudgetMB int              `json:"memoryBudgetMB"`
	MemoryUsedMB   int              `json:"memoryUsedMB"`
	Pools          []gust.PoolStats `json:"pools"`
}

func (a *API) status(w http.ResponseWriter, r *http.Request) error {
	s := Status{Version: a.cfg.Version, Pools: a.cfg.Deployer.Stats()}
	if a.cfg.Budget != nil {
		s.MemoryBudgetMB, s.MemoryUsedMB = a.cfg.Budget()
	}
	httperr.WriteJSON(w, http.StatusOK, s)
	return nil
}

func pathName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if err := gust.ValidateName(name); err != nil {
		return "", err
	}
	return name, nil
}

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return gust.Errorf(gust.EINVALID, "invalid JSON body: %v", err)
	}
	return nil
}
