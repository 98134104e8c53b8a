package gust

import (
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Runtimes a version can run on.
const (
	RuntimeWasm    = "wasm"    // WebAssembly: a gust reactor or a WASI command (WAGI)
	RuntimeProcess = "process" // any executable, HTTP on $PORT or the Lambda Runtime API
	RuntimePython3 = "python3" // Lambda-style Python handler
	RuntimeNodejs  = "nodejs"  // Lambda-style Node.js handler
)

// Protocols of the process runtime.
const (
	ProtocolHTTP   = "http"   // the process serves HTTP on $PORT
	ProtocolLambda = "lambda" // the process speaks the AWS Lambda Runtime API
)

// Defaults for a Spec's zero fields.
const (
	DefaultMemoryMB               = 128
	DefaultTimeout                = 30 * time.Second
	DefaultMaxConcurrency         = 100
	DefaultIdleTimeout            = 5 * time.Minute
	DefaultQueueTimeout           = 1 * time.Second
	DefaultMaxBodyBytes           = 6 << 20
	DefaultPerInstanceConcurrency = 1

	DefaultRetries      = 2
	DefaultRetryBackoff = 1 * time.Second
	DefaultMaxEventAge  = 6 * time.Hour

	MaxMemoryMB = 4096
	MaxTimeout  = 15 * time.Minute
)

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validName is nameRE.MatchString without the regexp machinery: every
// request through the gateway checks a name. TestValidNameMatchesRE keeps
// the two in step.
func validName(name string) bool {
	if len(name) < 1 || len(name) > 63 || name[0] == '-' || name[len(name)-1] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ValidateName reports whether name is a valid function name: lowercase
// letters, digits and '-', 1 to 63 characters, not starting or ending with
// '-'. The error is EINVALID and names the offending value.
func ValidateName(name string) error {
	if !validName(name) {
		return Errorf(EINVALID, "invalid function name %q: use 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit", name)
	}
	return nil
}

// Duration is a time.Duration that reads and writes as a Go duration string
// ("30s", "1m30s") in JSON and YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string, or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("duration must be a string such as \"30s\": %w", err)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// Spec is what a version runs with: its runtime, limits and scaling. Every
// field is a manifest field (gust.yaml) and a `gust deploy` flag. Zero
// fields take the defaults above (see WithDefaults).
type Spec struct {
	Runtime string            `json:"runtime"`
	Env     map[string]string `json:"env,omitempty"`
	// Secrets names the secrets the function gets, as environment
	// variables of the same names. Their values never enter the spec.
	Secrets []string `json:"secrets,omitempty"`

	// Limits.
	MemoryMB     int      `json:"memory,omitempty"`       // --memory MB
	Timeout      Duration `json:"timeout,omitempty"`      // --timeout DUR
	MaxBodyBytes int64    `json:"maxBodyBytes,omitempty"` // request body limit

	// Scaling.
	MaxConcurrency         int      `json:"maxConcurrency,omitempty"`         // --max-concurrency N
	MinInstances           int      `json:"minInstances,omitempty"`           // --min-instances N
	IdleTimeout            Duration `json:"idleTimeout,omitempty"`            // --idle-timeout DUR
	QueueTimeout           Duration `json:"queueTimeout,omitempty"`           // --queue-timeout DUR
	PerInstanceConcurrency int      `json:"perInstanceConcurrency,omitempty"` // --per-instance-concurrency N

	// Process runtimes (process, python3, nodejs).
	Cmd      []string `json:"cmd,omitempty"`      // --cmd: entry command; default ./bootstrap in the archive
	Protocol string   `json:"protocol,omitempty"` // --protocol http|lambda (process runtime)
	Handler  string   `json:"handler,omitempty"`  // --handler FILE.FUNCTION (python3, nodejs)
	// Egress lets a process instance open network connections: it then
	// stays in the host's network namespace, where it can reach any
	// address, 127.0.0.1 (gust's gateway, NATS) included. Without it an
	// instance has a network of its own with only a loopback, and reaches
	// nothing but itself and, through gust, its Runtime API.
	Egress bool `json:"egress,omitempty"` // --egress

	// Async invocations.
	Retries      *int     `json:"retries,omitempty"`      // --retries N: attempts after the first (default 2)
	RetryBackoff Duration `json:"retryBackoff,omitempty"` // --retry-backoff DUR: first retry delay, doubling (default 1s)
	MaxEventAge  Duration `json:"maxEventAge,omitempty"`  // --max-event-age DUR: give up after (default 6h)

	// Event sources that invoke the function asynchronously.
	Triggers []Trigger `json:"triggers,omitempty"`

	// Routes are the HTTP routes of /fn/NAME/..., each with its own auth,
	// rate limit and body schema. Empty: every path is served, without
	// auth; otherwise a request matching no route is answered 404.
	Routes []Route `json:"routes,omitempty"`

	// Snapshot turns pre-initialized memory snapshots off with false
	// (wasm reactors; on by default).
	Snapshot *bool `json:"snapshot,omitempty"`

	// Capabilities of a wasm function. Each is denied unless declared.

	// AllowedHosts are the hosts a wasm function may send HTTP requests
	// to through the host: exact names ("api.example.com") or wildcards
	// of any subdomain ("*.example.com", which does not match
	// example.com itself). IP literals are refused.
	AllowedHosts []string `json:"allowedHosts,omitempty"` // --allow-host HOST
	// Files is a read-only directory the function sees at FilesMount.
	Files *Files `json:"files,omitempty"` // --files DIR
	// KV gives the function its own key-value store.
	KV bool `json:"kv,omitempty"` // --kv
}

// FilesMount is where a wasm function sees its Files directory.
const FilesMount = "/files"

// Files is a directory uploaded with a version and mounted read-only.
// In a manifest it is written as the directory's path ("files: static"),
// relative to the manifest; the CLI archives the directory and the server
// records the archive's digest.
type Files struct {
	// Dir is the local directory the CLI uploads; it is not stored.
	Dir string `json:"dir,omitempty"`
	// Digest is "sha256:<hex>" of the tar archive stored beside the
	// code; set by the server at deploy.
	Digest string `json:"digest,omitempty"`
	// Size is the archive's size in bytes.
	Size int64 `json:"size,omitempty"`
}

// UnmarshalJSON reads a directory path written as a bare string, or the
// object form.
func (f *Files) UnmarshalJSON(b []byte) error {
	var dir string
	if err := json.Unmarshal(b, &dir); err == nil {
		*f = Files{Dir: dir}
		return nil
	}
	type plain Files
	var p plain
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("files: want a directory path or {dir, digest}: %w", err)
	}
	*f = Files(p)
	return nil
}

// MaxAllowedHosts bounds Spec.AllowedHosts.
const MaxAllowedHosts = 100

var hostLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateAllowedHost reports whether h can be an entry of AllowedHosts:
// a lowercase DNS name of two labels or more, optionally "*." and such a
// name; no IP literal, port, scheme or path.
func ValidateAllowedHost(h string) error {
	name, _ := strings.CutPrefix(h, "*.")
	bad := func(why string) error {
		return Errorf(EINVALID, "invalid allowed host %q: %s", h, why)
	}
	switch {
	case h == "":
		return bad("empty")
	case strings.Contains(h, "://") || strings.ContainsAny(h, "/:?#@[] "):
		return bad("write a host name only, such as api.example.com (no scheme, port or path)")
	case strings.Contains(name, "*"):
		return bad("a wildcard must be the whole first label, as in *.example.com")
	case net.ParseIP(strings.Trim(name, "[]")) != nil || ipv4ish(name):
		return bad("IP addresses are not allowed; name the host")
	case strings.ToLower(name) != name:
		return bad("write it in lowercase")
	case len(name) > 253:
		return bad("longer than 253 characters")
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 {
		return bad("want a fully qualified name such as api.example.com")
	}
	for _, l := range labels {
		if !hostLabelRE.MatchString(l) {
			return bad(fmt.Sprintf("label %q is not a DNS label", l))
		}
	}
	return nil
}

// ipv4ish catches numeric hosts that net.ParseIP refuses but resolvers
// accept ("127.1", "0x7f.0.0.1", "2130706433").
func ipv4ish(name string) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	if last == "" {
		return false
	}
	for _, c := range strings.ToLower(last) {
		if (c < '0' || c > '9') && c != 'x' && (c < 'a' || c > 'f') {
			return false
		}
	}
	return last[0] >= '0' && last[0] <= '9'
}

// Trigger is an event source of a function. Exactly one of Cron, Subject,
// Stream and Webhook is set.
type Trigger struct {
	Cron     string   `json:"cron,omitempty"`     // "*/5 * * * *", "@every 30s"
	Timezone string   `json:"timezone,omitempty"` // IANA zone of Cron (default UTC)
	CatchUp  Duration `json:"catchUp,omitempty"`  // a tick missed while down fires at start if this recent

	Subject string `json:"subject,omitempty"` // core NATS subject: at most once
	Stream  string `json:"stream,omitempty"`  // JetStream stream with a durable consumer: at least once
	Filter  string `json:"filter,omitempty"`  // subject filter within Stream

	BatchSize      int `json:"batchSize,omitempty"`      // messages fetched at once (Stream)
	MaxConcurrency int `json:"maxConcurrency,omitempty"` // in-flight invocations of this trigger
	MaxDeliveries  int `json:"maxDeliveries,omitempty"`  // then dead-lettered (Stream)

	Webhook *WebhookTrigger `json:"webhook,omitempty"` // signed POSTs to a public path
}

// Webhook signature schemes.
const (
	WebhookGitHub     = "github"      // X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>
	WebhookStripe     = "stripe"      // Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">
	WebhookHMACSHA256 = "hmac-sha256" // X-Signature: <hex HMAC-SHA256 of the body>
)

// WebhookTrigger runs the function for each POST to Path that carries a
// valid signature made with the secret named Secret.
type WebhookTrigger struct {
	Path   string `json:"path"`   // "/hooks/github": public, unique across functions
	Secret string `json:"secret"` // name of the secret holding the signing key
	Scheme string `json:"scheme"` // github, stripe or hmac-sha256
	// Tolerance is how old a stripe signature's timestamp may be, against
	// replay (default 5m).
	Tolerance Duration `json:"tolerance,omitempty"`
}

// WithDefaults returns a copy of s with zero fields set to their defaults.
func (s Spec) WithDefaults() Spec {
	if s.Runtime == "" {
		s.Runtime = RuntimeWasm
	}
	if s.MemoryMB == 0 {
		s.MemoryMB = DefaultMemoryMB
	}
	if s.Timeout == 0 {
		s.Timeout = Duration(DefaultTimeout)
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if s.MaxConcurrency == 0 {
		s.MaxConcurrency = DefaultMaxConcurrency
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = Duration(DefaultIdleTimeout)
	}
	if s.QueueTimeout == 0 {
		s.QueueTimeout = Duration(DefaultQueueTimeout)
	}
	if s.PerInstanceConcurrency == 0 {
		s.PerInstanceConcurrency = DefaultPerInstanceConcurrency
	}
	if s.Retries == nil {
		r := DefaultRetries
		s.Retries = &r
	}
	if s.RetryBackoff == 0 {
		s.RetryBackoff = Duration(DefaultRetryBackoff)
	}
	if s.MaxEventAge == 0 {
		s.MaxEventAge = Duration(DefaultMaxEventAge)
	}
	if s.Runtime == RuntimeProcess && s.Protocol == "" {
		s.Protocol = ProtocolHTTP
	}
	return s
}

var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidateSecretName reports whether name can name a secret: it becomes an
// environment variable of the functions that list it.
func ValidateSecretName(name string) error {
	if !envKeyRE.MatchString(name) || len(name) > 128 {
		return Errorf(EINVALID, "invalid secret name %q: want 1 to 128 letters, digits and '_', not starting with a digit", name)
	}
	return nil
}

// Validate checks a spec (after WithDefaults) and returns an EINVALID error
// naming the first field that is wrong.
func (s Spec) Validate() error {
	switch s.Runtime {
	case RuntimeWasm, RuntimeProcess, RuntimePython3, RuntimeNodejs:
	default:
		return Errorf(EINVALID, "invalid runtime %q: want wasm, process, python3 or nodejs", s.Runtime)
	}
	if s.MemoryMB < 1 || s.MemoryMB > MaxMemoryMB {
		return Errorf(EINVALID, "invalid memory %d MB: want 1 to %d", s.MemoryMB, MaxMemoryMB)
	}
	if s.Timeout.D() <= 0 || s.Timeout.D() > MaxTimeout {
		return Errorf(EINVALID, "invalid timeout %s: want more than 0 and at most %s", s.Timeout, MaxTimeout)
	}
	if s.MaxBodyBytes < 0 {
		return Errorf(EINVALID, "invalid maxBodyBytes %d: must not be negative", s.MaxBodyBytes)
	}
	if s.MaxConcurrency < 1 {
		return Errorf(EINVALID, "invalid max concurrency %d: want at least 1", s.MaxConcurrency)
	}
	if s.MinInstances < 0 || s.MinInstances > s.MaxConcurrency {
		return Errorf(EINVALID, "invalid min instances %d: want 0 to max concurrency (%d)", s.MinInstances, s.MaxConcurrency)
	}
	if s.IdleTimeout.D() < 0 {
		return Errorf(EINVALID, "invalid idle timeout %s: must not be negative", s.IdleTimeout)
	}
	if s.QueueTimeout.D() < 0 {
		return Errorf(EINVALID, "invalid queue timeout %s: must not be negative", s.QueueTimeout)
	}
	if s.PerInstanceConcurrency < 1 {
		return Errorf(EINVALID, "invalid per-instance concurrency %d: want at least 1", s.PerInstanceConcurrency)
	}
	if s.Runtime == RuntimeWasm && s.PerInstanceConcurrency != 1 {
		return Errorf(EINVALID, "invalid per-instance concurrency %d: a wasm instance serves one call at a time", s.PerInstanceConcurrency)
	}
	if s.Retries != nil && (*s.Retries < 0 || *s.Retries > 100) {
		return Errorf(EINVALID, "invalid retries %d: want 0 to 100", *s.Retries)
	}
	if s.RetryBackoff.D() < 0 || s.MaxEventAge.D() < 0 {
		return Errorf(EINVALID, "invalid retry backoff %s or max event age %s: must not be negative", s.RetryBackoff, s.MaxEventAge)
	}
	switch s.Runtime {
	case RuntimeProcess:
		if s.Protocol != ProtocolHTTP && s.Protocol != ProtocolLambda {
			return Errorf(EINVALID, "invalid protocol %q: want http or lambda", s.Protocol)
		}
	case RuntimePython3, RuntimeNodejs:
		if s.Protocol != "" && s.Protocol != ProtocolLambda {
			return Errorf(EINVALID, "invalid protocol %q: the %s runtime speaks lambda", s.Protocol, s.Runtime)
		}
		if !strings.Contains(s.Handler, ".") {
			return Errorf(EINVALID, "invalid handler %q: the %s runtime wants FILE.FUNCTION, such as handler.handler", s.Handler, s.Runtime)
		}
	case RuntimeWasm:
		if len(s.Cmd) > 0 || s.Protocol != "" || s.Handler != "" {
			return Errorf(EINVALID, "cmd, protocol and handler apply to process runtimes, not wasm")
		}
	}
	for i, t := range s.Triggers {
		n := 0
		for _, set := range []bool{t.Cron != "", t.Subject != "", t.Stream != "", t.Webhook != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return Errorf(EINVALID, "trigger %d: set exactly one of cron, subject, stream and webhook", i+1)
		}
		if t.BatchSize < 0 || t.MaxConcurrency < 0 || t.MaxDeliveries < 0 || t.CatchUp.D() < 0 {
			return Errorf(EINVALID, "trigger %d: batchSize, maxConcurrency, maxDeliveries and catchUp must not be negative", i+1)
		}
	}
	if err := validateRoutes(s.Routes); err != nil {
		return err
	}
	if err := s.validateCapabilities(); err != nil {
		return err
	}
	for _, name := range s.Secrets {
		if err := ValidateSecretName(name); err != nil {
			return err
		}
		if _, clash := s.Env[name]; clash {
			return Errorf(EINVALID, "%q is both an env variable and a secret", name)
		}
	}
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !envKeyRE.MatchString(k) {
			return Errorf(EINVALID, "invalid env name %q: want letters, digits and '_', not starting with a digit", k)
		}
		if strings.ContainsRune(s.Env[k], 0) {
			return Errorf(EINVALID, "invalid env value for %q: contains a NUL byte", k)
		}
	}
	return nil
}

// Version is one immutable deploy of a function. Numbers start at 1 and only
// grow; a version is never changed after it is created.
type Version struct {
	Function   string    `json:"function"`
	Number     int       `json:"version"`
	Spec       Spec      `json:"spec"`
	CodeDigest string    `json:"codeDigest"` // "sha256:<hex>" of the code artifact
	CodeSize   int64     `json:"codeSize"`
	Shape      string    `json:"shape,omitempty"` // driver-specific: "reactor", "wagi", ...
	CreatedAt  time.Time `json:"createdAt"`
	// Snapshot is this node's memory-snapshot state of the version's
	// module ("ready", "pending", "off: why", "unsupported: why"); empty
	// when the version is not loaded here. Not stored: filled on read.
	Snapshot string `json:"snapshot,omitempty"`
}

// AliasLive is the alias that `/fn/NAME` and `gust deploy` use.
const AliasLive = "live"

// Function is a named function: its versions and which one is live.
type Function struct {
	Name          string           `json:"name"`
	Live          int              `json:"live"`          // version the live alias sends most traffic to
	LatestVersion int              `json:"latestVersion"` // highest version number ever created
	Aliases       map[string]Alias `json:"aliases"`       // always holds "live" once deployed
	CreatedAt     time.Time        `json:"createdAt"`
	UpdatedAt     time.Time        `json:"updatedAt"`
}

// AliasTarget is one version an alias routes to, with its share of traffic.
type AliasTarget struct {
	Version int `json:"version"`
	Weight  int `json:"weight"` // percent, 1..100; the targets of an alias sum to 100
}

// Alias names a version, or splits traffic between two versions by weight
// (a canary). The alias "live" always exists once a function has a version.
type Alias struct {
	Name    string        `json:"name"`
	Targets []AliasTarget `json:"targets"`
}

// Validate checks an alias: a valid name, one or two distinct positive
// versions, weights 1..100 that sum to 100.
func (a Alias) Validate() error {
	if err := ValidateName(a.Name); err != nil {
		return Errorf(EINVALID, "invalid alias name %q", a.Name)
	}
	if len(a.Targets) < 1 || len(a.Targets) > 2 {
		return Errorf(EINVALID, "alias %q must point at one or two versions, not %d", a.Name, len(a.Targets))
	}
	sum := 0
	seen := map[int]bool{}
	for _, t := range a.Targets {
		if t.Version < 1 {
			return Errorf(EINVALID, "alias %q: invalid version %d", a.Name, t.Version)
		}
		if seen[t.Version] {
			return Errorf(EINVALID, "alias %q names version %d twice", a.Name, t.Version)
		}
		seen[t.Version] = true
		if t.Weight < 1 || t.Weight > 100 {
			return Errorf(EINVALID, "alias %q: weight %d of version %d must be 1 to 100", a.Name, t.Weight, t.Version)
		}
		sum += t.Weight
	}
	if sum != 100 {
		return Errorf(EINVALID, "alias %q: weights sum to %d, want 100", a.Name, sum)
	}
	return nil
}

// Pick returns the version the alias routes a request to, given r uniformly
// drawn from [0, 100). It is a pure function so a split is testable.
func (a Alias) Pick(r int) int {
	for _, t := range a.Targets {
		if r < t.Weight {
			return t.Version
		}
		r -= t.Weight
	}
	if len(a.Targets) == 0 {
		return 0
	}
	return a.Targets[len(a.Targets)-1].Version
}

// validateCapabilities checks the wasm capabilities: they are host
// functions of the wasm driver, which other runtimes do not have.
func (s Spec) validateCapabilities() error {
	if s.Runtime != RuntimeWasm && (len(s.AllowedHosts) > 0 || s.Files != nil || s.KV) {
		return Errorf(EINVALID, "allowedHosts, files and kv apply to the wasm runtime, not %s", s.Runtime)
	}
	if len(s.AllowedHosts) > MaxAllowedHosts {
		return Errorf(EINVALID, "too many allowed hosts (%d): at most %d", len(s.AllowedHosts), MaxAllowedHosts)
	}
	seen := make(map[string]bool, len(s.AllowedHosts))
	for _, h := range s.AllowedHosts {
		if err := ValidateAllowedHost(h); err != nil {
			return err
		}
		if seen[h] {
			return Errorf(EINVALID, "allowed host %q is listed twice", h)
		}
		seen[h] = true
	}
	if f := s.Files; f != nil {
		if f.Dir == "" && f.Digest == "" {
			return Errorf(EINVALID, "files: give the directory to upload")
		}
		if f.Digest != "" && !validDigest(f.Digest) {
			return Errorf(EINVALID, "invalid files digest %q: want sha256:<64 lowercase hex digits>", f.Digest)
		}
		if f.Size < 0 {
			return Errorf(EINVALID, "invalid files size %d", f.Size)
		}
	}
	return nil
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func validDigest(d string) bool { return digestRE.MatchString(d) }
