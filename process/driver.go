package process

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/process/bootstrap"
)

// Config configures a Driver. Zero fields take the defaults given.
type Config struct {
	// WorkDir holds extracted code (code/<sha256>/), gust's runtime
	// clients (runtime/) and, without a mount namespace, each instance's
	// /tmp (tmp/). The node passes DATA/process. Required.
	WorkDir string
	// Logger receives the driver's own logs. Nil means slog.Default().
	Logger *slog.Logger

	// Python and Node are the interpreters of the python3 and nodejs
	// runtimes. Empty: python3 and node looked up in
	// /usr/local/bin:/usr/bin:/bin, the PATH functions get, so that the
	// interpreter is one every user may run.
	Python, Node string

	// StartTimeout bounds a cold start: until an http function accepts a
	// connection on $PORT, or a lambda function first asks for an event.
	// Default 10s.
	StartTimeout time.Duration
	// Archive bounds what code may unpack to.
	Archive Limits
	// MaxResponseBytes bounds a function's response. Default 6 MiB, as
	// Lambda's synchronous invocations.
	MaxResponseBytes int64

	// TmpMB is the size of an instance's private /tmp (a tmpfs whose
	// pages count against the instance's memory limit). Default 64.
	TmpMB int
	// PidsMax bounds the processes and threads of one instance. Default 256.
	PidsMax int
	// UIDBase and UIDCount are the range of unprivileged user ids that
	// functions run as: each function gets its own, so that one function
	// cannot read another's files or /proc entries, derived from its name
	// and kept in WorkDir/uids.json across restarts. No two loaded
	// functions share one, and an unloaded function's uid goes to no
	// other while an instance of it still runs; a load past UIDCount
	// such functions fails.
	// Default 200000 and 10000.
	UIDBase, UIDCount int
	// SpareSandboxes is how many sandbox helpers are kept prepared ahead
	// of need (namespaces, cgroup, private /tmp and /proc, loopback,
	// Runtime API listener, capability bounding set), so a cold start
	// only mounts the code, drops privileges and starts the function.
	// Each serves one instance. Default 2; -1 keeps none.
	SpareSandboxes int
	// Prewarm is how many pre-warmed workers are kept per managed
	// runtime (python3, nodejs) while a version of that runtime is
	// loaded: sandboxed interpreters with gust's runtime client loaded,
	// which a cold start specializes with the function's code,
	// environment, user and memory limit instead of starting an
	// interpreter. Default 1; -1 keeps none. Workers need the full
	// sandbox (root, namespaces, a memory cgroup); a function with
	// Egress always starts cold, in the host's network.
	Prewarm int
	// PrewarmMemoryMB bounds the memory of all pre-warmed workers
	// together, outside the node's memory budget for instances: each is
	// held to 128 MB until specialized. Default 512.
	PrewarmMemoryMB int
	// NoSandbox runs functions as gust's own user with no namespaces or
	// cgroups: for development only.
	NoSandbox bool
}

// Driver runs process functions: any executable (runtime process) and
// Lambda-style Python and Node handlers (runtimes python3 and nodejs). One
// Driver serves the three runtimes; Drivers returns a gust.Driver for each.
// It is safe for concurrent use.
type Driver struct {
	cfg        Config
	log        *slog.Logger
	sb         *sandbox
	prewarm    *prewarm // nil: no pre-warmed workers
	runtimeDir string
	codeRoot   string
	tmpRoot    string

	mu   sync.Mutex
	uids map[string]int // function → uid, as recorded in WorkDir
	live map[string]int // function → modules loaded
	code map[string]int // digest → modules using its directory
	// extracting holds the extractions under way, one per digest.
	extracting map[string]*extraction
	// extracted, if set, runs after each extraction, outside d.mu: tests
	// hold an extraction there.
	extracted func(digest string)
	instances map[*instance]struct{}
	seq       int
	closed    bool
}

// New returns a Driver. It creates WorkDir, writes the runtime clients,
// and probes what sandboxing this machine allows, logging each protection
// it cannot apply (Isolation reports them too).
func New(cfg Config) (*Driver, error) {
	if cfg.WorkDir == "" {
		return nil, errors.New("process: Config.WorkDir is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 6 << 20
	}
	if cfg.TmpMB <= 0 {
		cfg.TmpMB = 64
	}
	if cfg.PidsMax <= 0 {
		cfg.PidsMax = 256
	}
	if cfg.UIDBase <= 0 {
		cfg.UIDBase = 200000
	}
	if cfg.SpareSandboxes == 0 {
		cfg.SpareSandboxes = 2
	}
	if cfg.UIDCount <= 0 {
		cfg.UIDCount = 10000
	}
	if cfg.Prewarm == 0 {
		cfg.Prewarm = defaultPrewarm
	}
	if cfg.PrewarmMemoryMB <= 0 {
		cfg.PrewarmMemoryMB = defaultPrewarmMemoryMB
	}
	cfg.Archive = cfg.Archive.withDefaults()
	abs, err := filepath.Abs(cfg.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("process: work dir: %w", err)
	}
	cfg.WorkDir = abs
	d := &Driver{
		cfg:        cfg,
		log:        cfg.Logger,
		runtimeDir: filepath.Join(abs, "runtime"),
		codeRoot:   filepath.Join(abs, "code"),
		tmpRoot:    filepath.Join(abs, "tmp"),
		uids:       map[string]int{},
		live:       map[string]int{},
		code:       map[string]int{},
		extracting: map[string]*extraction{},
		instances:  map[*instance]struct{}{},
	}
	for _, dir := range []string{abs, d.codeRoot, d.tmpRoot} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("process: create %s: %w", dir, err)
		}
	}
	// Extracted code from a previous run is cheap to redo; stale
	// directories of code no longer deployed would only pile up.
	if entries, err := os.ReadDir(d.codeRoot); err == nil {
		for _, e := range entries {
			_ = os.RemoveAll(filepath.Join(d.codeRoot, e.Name()))
		}
	}
	if err := os.MkdirAll(d.runtimeDir, 0o755); err != nil {
		return nil, fmt.Errorf("process: create %s: %w", d.runtimeDir, err)
	}
	for name, b := range map[string][]byte{"bootstrap.py": bootstrap.Python, "bootstrap.mjs": bootstrap.Node} {
		if err := os.WriteFile(filepath.Join(d.runtimeDir, name), b, 0o644); err != nil {
			return nil, fmt.Errorf("process: write runtime client: %w", err)
		}
	}
	if err := d.loadUIDs(); err != nil {
		// Functions get uids anew; none is shared.
		d.log.Warn("process: cannot read recorded function user ids", "err", err)
	}
	d.cfg.Python = findInterpreter(cfg.Python, "python3")
	d.cfg.Node = findInterpreter(cfg.Node, "node")
	d.sb = newSandbox(d.cfg, abs)
	iso := d.Isolation()
	d.log.Info("process driver ready", "namespaces", iso.Namespaces, "own_user", iso.OwnUser,
		"cgroup", iso.Cgroup, "network", iso.Network, "python3", d.cfg.Python, "node", d.cfg.Node)
	for _, n := range iso.Notes {
		d.log.Warn("process sandbox: " + n)
	}
	if d.cfg.Prewarm > 0 {
		if err := d.sb.prewarmSupport(); err != nil {
			d.log.Info("no pre-warmed python3 and nodejs workers: every cold start starts an interpreter", "reason", err)
		} else {
			d.prewarm = newPrewarm(d, d.cfg.Prewarm, d.cfg.PrewarmMemoryMB)
		}
	}
	return d, nil
}

// sandboxPath is the PATH functions get and where interpreters are found.
const sandboxPath = "/usr/local/bin:/usr/bin:/bin"

func findInterpreter(configured, name string) string {
	if configured != "" {
		return configured
	}
	for _, dir := range filepath.SplitList(sandboxPath) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o001 != 0 {
			return p
		}
	}
	return ""
}

// Isolation is what the sandbox achieved on this machine, for logs and
// `gust doctor`.
type Isolation struct {
	Namespaces bool     `json:"namespaces"` // own mount, pid, ipc and uts namespaces; private /tmp; read-only code
	OwnUser    bool     `json:"ownUser"`    // each function runs as an unprivileged user of its own
	Cgroup     string   `json:"cgroup"`     // "v1", "v2", or "" (then RLIMIT_AS bounds memory)
	Network    bool     `json:"network"`    // own network namespace per instance, unless its spec allows egress
	Notes      []string `json:"notes"`      // each protection not applied, and why
}

// Isolation reports what the sandbox achieved.
func (d *Driver) Isolation() Isolation {
	iso := Isolation{Namespaces: d.sb.namespaces, OwnUser: d.sb.ownUser, Network: d.sb.network}
	if d.sb.cg != nil {
		iso.Cgroup = "v1"
		if d.sb.cg.v2 {
			iso.Cgroup = "v2"
		}
	}
	iso.Notes = append(iso.Notes, d.sb.notes...)
	return iso
}

// Drivers returns the driver of each runtime this Driver serves: process,
// python3 and nodejs.
func (d *Driver) Drivers() []gust.Driver {
	return []gust.Driver{
		&runtimeDriver{d: d, runtime: gust.RuntimeProcess},
		&runtimeDriver{d: d, runtime: gust.RuntimePython3},
		&runtimeDriver{d: d, runtime: gust.RuntimeNodejs},
	}
}

// Close kills every instance still running and removes the driver's
// cgroups. Extracted code stays until the next New.
func (d *Driver) Close(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	// Workers first: a start under way must not outlive the sandbox.
	d.prewarm.close()
	d.mu.Lock()
	insts := make([]*instance, 0, len(d.instances))
	for in := range d.instances {
		insts = append(insts, in)
	}
	d.mu.Unlock()
	for _, in := range insts {
		in.stop()
	}
	d.sb.close()
	return nil
}

// uidsFile keeps, in WorkDir, the user id given to each function, so that
// a function keeps its uid across restarts.
const uidsFile = "uids.json"

// acquireUID returns the user id of a function, the same for all its
// versions and instances and across restarts, and counts one more live
// module of it (releaseUID undoes that). A new function's uid is derived
// from its name (probing on from there past uids taken) and recorded in
// WorkDir. No two functions share one: when all Config.UIDCount are
// taken, the uid of a function with no module loaded and no instance
// still running is given over, and with none such the load fails with
// EUNAVAILABLE.
func (d *Driver) acquireUID(function string) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if uid, ok := d.uids[function]; ok {
		d.live[function]++
		return uid, nil
	}
	owner := make(map[int]string, len(d.uids))
	for f, uid := range d.uids {
		owner[uid] = f
	}
	// A module closed with instances still running (a pool closed by
	// force) leaves their processes running as its uid until they stop:
	// the uid is not free until then.
	running := make(map[int]bool, len(d.instances))
	for in := range d.instances {
		running[in.m.uid] = true
	}
	h := fnv.New32a()
	h.Write([]byte(function))
	first := int(h.Sum32() % uint32(d.cfg.UIDCount))
	uid, reclaim := -1, -1
	for i := range d.cfg.UIDCount {
		cand := d.cfg.UIDBase + (first+i)%d.cfg.UIDCount
		f, taken := owner[cand]
		if !taken {
			uid = cand
			break
		}
		if reclaim < 0 && d.live[f] == 0 && !running[cand] {
			reclaim = cand
		}
	}
	if uid < 0 && reclaim >= 0 {
		uid = reclaim
		delete(d.uids, owner[uid])
	}
	if uid < 0 {
		return 0, gust.Errorf(gust.EUNAVAILABLE, "all %d function user ids (from %d) belong to loaded functions or to instances still running: raise the process driver's UIDCount", d.cfg.UIDCount, d.cfg.UIDBase)
	}
	d.uids[function] = uid
	d.live[function]++
	if err := d.saveUIDsLocked(); err != nil {
		// The uid is still unique in this run; only the next run may
		// give the function another.
		d.log.Warn("process: cannot record function user ids", "err", err)
	}
	return uid, nil
}

// releaseUID counts one less live module of the function.
func (d *Driver) releaseUID(function string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.live[function]--; d.live[function] <= 0 {
		delete(d.live, function)
	}
}

// uidFor returns the user id of a function that has one.
func (d *Driver) uidFor(function string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.uids[function]
}

// loadUIDs reads the recorded user ids, keeping those inside the
// configured range, one function per uid.
func (d *Driver) loadUIDs() error {
	b, err := os.ReadFile(filepath.Join(d.cfg.WorkDir, uidsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var m map[string]int
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%s: %w", uidsFile, err)
	}
	names := make([]string, 0, len(m))
	for f := range m {
		names = append(names, f)
	}
	sort.Strings(names)
	taken := map[int]bool{}
	for _, f := range names {
		uid := m[f]
		if uid < d.cfg.UIDBase || uid >= d.cfg.UIDBase+d.cfg.UIDCount || taken[uid] {
			continue
		}
		taken[uid] = true
		d.uids[f] = uid
	}
	return nil
}

// saveUIDsLocked records the user ids, whole or not at all. d.mu is held.
func (d *Driver) saveUIDsLocked() error {
	b, err := json.Marshal(d.uids)
	if err != nil {
		return err
	}
	path := filepath.Join(d.cfg.WorkDir, uidsFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// acquireCode returns the directory code is extracted to, extracting it on
// first use. Versions with the same code share the directory.
// Extraction runs outside d.mu, which every cold start takes: a big
// archive must not hold up other functions' starts. Loads of the same
// code wait for the one extraction under way.
func (d *Driver) acquireCode(code []byte) (string, string, error) {
	sum := sha256.Sum256(code)
	digest := hex.EncodeToString(sum[:])
	dir := filepath.Join(d.codeRoot, digest)
	for {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return "", "", gust.Errorf(gust.EUNAVAILABLE, "process driver is closed")
		}
		if d.code[digest] > 0 {
			d.code[digest]++
			d.mu.Unlock()
			return dir, digest, nil
		}
		if x, ok := d.extracting[digest]; ok {
			d.mu.Unlock()
			<-x.done
			if x.err != nil {
				return "", "", x.err
			}
			// Extracted: take a reference as above (or extract again if
			// its one user let it go meanwhile).
			continue
		}
		x := &extraction{done: make(chan struct{})}
		d.extracting[digest] = x
		d.mu.Unlock()

		x.err = d.extractCode(code, dir)
		if d.extracted != nil {
			d.extracted(digest)
		}
		d.mu.Lock()
		delete(d.extracting, digest)
		if x.err == nil {
			d.code[digest] = 1
		}
		d.mu.Unlock()
		close(x.done)
		if x.err != nil {
			return "", "", x.err
		}
		return dir, digest, nil
	}
}

// extraction is one archive being unpacked; done closes when it is over.
type extraction struct {
	done chan struct{}
	err  error
}

// extractCode unpacks code into dir, through a temporary directory so
// that dir appears whole or not at all. The caller holds the digest's
// extraction, so nothing else uses dir meanwhile.
func (d *Driver) extractCode(code []byte, dir string) error {
	_ = os.RemoveAll(dir)
	tmp, err := os.MkdirTemp(d.codeRoot, ".x-")
	if err != nil {
		return fmt.Errorf("process: extraction dir: %w", err)
	}
	if err := extract(code, tmp, d.cfg.Archive); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	// Readable by the functions' users; written by nobody but gust.
	if err := os.Chmod(tmp, 0o755); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("process: chmod code dir: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("process: move code into place: %w", err)
	}
	return nil
}

func (d *Driver) releaseCode(digest string) {
	d.mu.Lock()
	d.code[digest]--
	if d.code[digest] > 0 {
		d.mu.Unlock()
		return
	}
	delete(d.code, digest)
	// Moved aside under the lock (a rename is quick), removed outside it:
	// a load of the same code may extract it again at once.
	dir := filepath.Join(d.codeRoot, digest)
	d.seq++
	gone := filepath.Join(d.codeRoot, fmt.Sprintf(".rm-%d", d.seq))
	if err := os.Rename(dir, gone); err != nil {
		_ = os.RemoveAll(dir)
		gone = ""
	}
	d.mu.Unlock()
	if gone != "" {
		_ = os.RemoveAll(gone)
	}
}

func (d *Driver) track(in *instance) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return gust.Errorf(gust.EUNAVAILABLE, "process driver is closed")
	}
	d.instances[in] = struct{}{}
	return nil
}

func (d *Driver) untrack(in *instance) {
	d.mu.Lock()
	delete(d.instances, in)
	d.mu.Unlock()
}

func (d *Driver) nextSeq() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	return d.seq
}

// runtimeDriver is the gust.Driver of one runtime.
type runtimeDriver struct {
	d       *Driver
	runtime string
}

var _ gust.Driver = (*runtimeDriver)(nil)

func (rd *runtimeDriver) Runtime() string { return rd.runtime }

// Load checks the spec, unpacks the archive and checks that it holds what
// the runtime will run. Nothing is started. Errors: EINVALID for bad code
// or spec, EUNAVAILABLE when the runtime's interpreter is missing.
func (rd *runtimeDriver) Load(ctx context.Context, v *gust.Version, code []byte, logs gust.LogSink) (gust.Module, error) {
	d := rd.d
	spec := v.Spec.WithDefaults()
	if spec.Runtime != rd.runtime {
		return nil, gust.Errorf(gust.EINVALID, "the %s driver cannot run runtime %q", rd.runtime, spec.Runtime)
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	protocol := spec.Protocol
	var interp string
	switch rd.runtime {
	case gust.RuntimePython3:
		protocol, interp = gust.ProtocolLambda, d.cfg.Python
		if interp == "" {
			return nil, gust.Errorf(gust.EUNAVAILABLE, "the python3 runtime needs python3, which is not installed on this machine (Debian package python3)")
		}
	case gust.RuntimeNodejs:
		protocol, interp = gust.ProtocolLambda, d.cfg.Node
		if interp == "" {
			return nil, gust.Errorf(gust.EUNAVAILABLE, "the nodejs runtime needs node, which is not installed on this machine (Debian package nodejs)")
		}
	}
	if protocol == gust.ProtocolLambda && spec.PerInstanceConcurrency > 1 {
		return nil, gust.Errorf(gust.EINVALID, "invalid per-instance concurrency %d: a Lambda Runtime API process handles one event at a time", spec.PerInstanceConcurrency)
	}
	uid, err := d.acquireUID(v.Function)
	if err != nil {
		return nil, err
	}
	dir, digest, err := d.acquireCode(code)
	if err != nil {
		d.releaseUID(v.Function)
		return nil, err
	}
	m := &module{
		d: d, function: v.Function, version: v.Number, spec: spec, protocol: protocol,
		logs: logs, taskRoot: dir, digest: digest, uid: uid,
	}
	if err := m.setCommand(interp); err != nil {
		d.releaseCode(digest)
		d.releaseUID(v.Function)
		return nil, err
	}
	d.prewarm.use(rd.runtime)
	return m, nil
}

// setCommand checks the unpacked code and decides the command line.
func (m *module) setCommand(interp string) error {
	switch m.spec.Runtime {
	case gust.RuntimePython3:
		modName, _, _ := cutLast(m.spec.Handler, ".")
		rel := strings.ReplaceAll(modName, ".", "/")
		if !isFile(filepath.Join(m.taskRoot, rel+".py")) && !isFile(filepath.Join(m.taskRoot, rel, "__init__.py")) {
			return gust.Errorf(gust.EINVALID, "handler %q: the archive has no %s.py at its root", m.spec.Handler, rel)
		}
		m.argv = []string{interp, m.runtimeFile("bootstrap.py")}
		m.runtimeDir = m.d.runtimeDir
	case gust.RuntimeNodejs:
		file, _, _ := cutLast(m.spec.Handler, ".")
		found := false
		for _, ext := range []string{".js", ".mjs", ".cjs"} {
			if isFile(filepath.Join(m.taskRoot, filepath.FromSlash(file)+ext)) {
				found = true
				break
			}
		}
		if !found || strings.Contains(file, "..") {
			return gust.Errorf(gust.EINVALID, "handler %q: the archive has no %s.js, %s.mjs or %s.cjs at its root", m.spec.Handler, file, file, file)
		}
		m.argv = []string{interp, m.runtimeFile("bootstrap.mjs")}
		m.runtimeDir = m.d.runtimeDir
	default:
		argv := m.spec.Cmd
		if len(argv) == 0 {
			argv = []string{"./bootstrap"}
		}
		name := argv[0]
		if !filepath.IsAbs(name) && strings.Contains(name, "/") {
			rel := filepath.Clean(name)
			if rel == ".." || strings.HasPrefix(rel, "../") {
				return gust.Errorf(gust.EINVALID, "cmd %q points outside the archive", name)
			}
			st, err := os.Stat(filepath.Join(m.taskRoot, rel))
			switch {
			case err != nil && len(m.spec.Cmd) == 0:
				return gust.Errorf(gust.EINVALID, "the archive has no bootstrap at its root: put the executable there as bootstrap, or name it with --cmd")
			case err != nil:
				return gust.Errorf(gust.EINVALID, "cmd %q: the archive has no %s", name, rel)
			case !st.Mode().IsRegular():
				return gust.Errorf(gust.EINVALID, "%s in the archive is not a regular file", rel)
			case st.Mode()&0o111 == 0:
				return gust.Errorf(gust.EINVALID, "%s in the archive is not executable: set its mode to 0755 before packing it", rel)
			}
		} else if !filepath.IsAbs(name) && findInterpreter("", name) == "" {
			return gust.Errorf(gust.EINVALID, "cmd %q: no such program in %s", name, sandboxPath)
		}
		m.argv = argv
	}
	return nil
}

// runtimeFile is where an instance finds a runtime client.
func (m *module) runtimeFile(name string) string {
	_, rt, _ := m.d.sb.paths(m.taskRoot, m.d.runtimeDir, "")
	return rt + "/" + name
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
