package wasm

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"net/http"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/gustfaas/gust"
)

// hostModule is the import module of gust's host functions (ABI in doc.go).
const hostModule = "gust"

// Result codes of host functions: the high 32 bits of their i64 result.
const (
	resultOK       = 0 // the payload is the result
	resultNotFound = 1 // no such key; no payload
	resultDenied   = 2 // the capability is not granted; the payload says why
	resultInvalid  = 3 // bad arguments; the payload says why
	resultFailed   = 4 // the operation failed (network, store); the payload says why
	resultLimit    = 5 // a limit was hit; the payload says which
)

// streamGust is the log stream of platform events (logs.StreamGust), where
// refused capability calls are recorded beside the function's own lines.
const streamGust = "gust"

// caps are the capabilities one module was granted, resolved at Load.
type caps struct {
	hosts  hostMatcher
	client *http.Client // nil without allowedHosts
	kv     KV           // nil without kv: true
	files  fs.FS        // nil without files:

	maxRequests      int
	maxResponseBytes int64
	maxValueBytes    int
}

// call is the state of one invocation that host functions act on. It
// travels in the context of the guest call, which wazero hands to every
// host function the guest calls during it.
type call struct {
	m        *module
	id       string
	requests int
	result   []byte // payload waiting for result_read
}

type callKey struct{}

// withCall returns ctx carrying the state of invocation id, if the module
// has host capabilities at all (a call to any host function without one
// is refused).
func (m *module) withCall(ctx context.Context, id string) context.Context {
	if !m.importsHost {
		return ctx
	}
	return context.WithValue(ctx, callKey{}, &call{m: m, id: id})
}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// event records a refused or failed capability call in the function's log
// and the driver's.
func (c *call) event(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if c.m.logs != nil {
		c.m.logs.FunctionLog(c.m.function, c.m.version, c.id, streamGust, []byte(msg+"\n"))
	}
	c.m.d.log.Warn("wasm capability refused", "function", c.m.function, "version", c.m.version, "invocation", c.id, "reason", msg)
}

// hostFunc is one function of the host module.
type hostFunc struct {
	name    string
	params  []api.ValueType
	results []api.ValueType
	fn      func(ctx context.Context, c *call, mod api.Module, stack []uint64) (code uint32, payload []byte)
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// hostFuncs is the host module, ABI in doc.go. Each function but
// result_read returns (code<<32)|len and leaves the payload for
// result_read.
var hostFuncs = []hostFunc{
	{"http_request", []api.ValueType{i32, i32}, []api.ValueType{i64}, hostHTTPRequest},
	{"kv_get", []api.ValueType{i32, i32}, []api.ValueType{i64}, hostKVGet},
	{"kv_set", []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64}, hostKVSet},
	{"kv_delete", []api.ValueType{i32, i32}, []api.ValueType{i64}, hostKVDelete},
	{"kv_list", []api.ValueType{i32, i32}, []api.ValueType{i64}, hostKVList},
}

// instantiateHost adds the host module to r.
func instantiateHost(ctx context.Context, r wazero.Runtime) (api.Module, error) {
	b := r.NewHostModuleBuilder(hostModule)
	for _, f := range hostFuncs {
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			c := callFrom(ctx)
			var code uint32
			var payload []byte
			if c == nil {
				code, payload = resultDenied, []byte("gust host functions can only be called while handling a request")
			} else {
				code, payload = f.fn(ctx, c, mod, stack)
				c.result = payload
			}
			stack[0] = uint64(code)<<32 | uint64(uint32(len(payload)))
		}), f.params, f.results).Export(f.name)
	}
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(hostResultRead),
		[]api.ValueType{i32, i32}, []api.ValueType{i32}).Export("result_read")
	return b.Instantiate(ctx)
}

// hostResultRead copies the pending payload of the last host call to
// ptr (at most cap bytes) and returns how many bytes it copied, or -1 if
// the memory is out of range. The payload is then gone.
func hostResultRead(ctx context.Context, mod api.Module, stack []uint64) {
	ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	c := callFrom(ctx)
	if c == nil {
		stack[0] = 0
		return
	}
	p := c.result
	c.result = nil
	if uint32(len(p)) < n {
		n = uint32(len(p))
	}
	if !mod.Memory().Write(ptr, p[:n]) {
		stack[0] = uint64(uint32(0xffffffff))
		return
	}
	stack[0] = uint64(n)
}

// guestBytes copies n bytes at ptr out of the guest's memory. ptr and n
// are i32 stack slots, whose high halves are not defined.
func guestBytes(mod api.Module, ptr, n uint64) ([]byte, bool) {
	b, ok := mod.Memory().Read(api.DecodeU32(ptr), api.DecodeU32(n))
	if !ok {
		return nil, false
	}
	return append([]byte(nil), b...), true
}

func errPayload(format string, args ...any) []byte {
	return []byte(fmt.Sprintf(format, args...))
}

// resultCode maps an error of a capability to the result code the guest
// sees.
func resultCode(err error) uint32 {
	switch gust.ErrorCode(err) {
	case gust.ENOTFOUND:
		return resultNotFound
	case gust.EINVALID:
		return resultInvalid
	case gust.EFORBIDDEN:
		return resultDenied
	case gust.ETOOLARGE:
		return resultLimit
	}
	return resultFailed
}

// encodeStrings encodes count (string)*, as kv_list answers.
func encodeStrings(ss []string) []byte {
	n := 4
	for _, s := range ss {
		n += 4 + len(s)
	}
	b := make([]byte, n)
	binary.LittleEndian.PutUint32(b, uint32(len(ss)))
	rest := b[4:]
	for _, s := range ss {
		rest = putBytes(rest, s)
	}
	return b
}

// capsFor resolves what spec grants: the HTTP client of its allowed hosts,
// its key-value store (created now, at deploy, if it does not exist) and
// its files. A capability the node cannot provide fails the load.
func (d *Driver) capsFor(ctx context.Context, function string, spec gust.Spec) (*caps, error) {
	cp := &caps{
		maxRequests:      d.cfg.MaxRequests,
		maxResponseBytes: d.cfg.MaxResponseBytes,
		maxValueBytes:    d.cfg.MaxValueBytes,
	}
	if len(spec.AllowedHosts) > 0 {
		for _, h := range spec.AllowedHosts {
			if err := gust.ValidateAllowedHost(h); err != nil {
				return nil, err
			}
		}
		cp.hosts = newHostMatcher(spec.AllowedHosts)
		cp.client = newClient(cp.hosts, d.cfg.Dial)
	}
	if spec.KV {
		if d.cfg.KV == nil {
			return nil, gust.Errorf(gust.EUNAVAILABLE, "function %s declares kv but this node has no key-value store", function)
		}
		kv, err := d.cfg.KV(ctx, function)
		if err != nil {
			return nil, fmt.Errorf("opening the key-value store of %s: %w", function, err)
		}
		cp.kv = kv
	}
	if f := spec.Files; f != nil {
		if f.Digest == "" {
			return nil, gust.Errorf(gust.EINVALID, "files: no archive was uploaded for directory %q", f.Dir)
		}
		if d.cfg.Archive == nil {
			return nil, gust.Errorf(gust.EUNAVAILABLE, "function %s declares files but this node has no archive store", function)
		}
		archive, err := d.cfg.Archive(ctx, f.Digest)
		if gust.ErrorCode(err) == gust.ENOTFOUND {
			return nil, gust.WrapError(gust.EINVALID, err, "files: no archive with digest %s: upload the directory with the deploy", f.Digest)
		}
		if err != nil {
			return nil, fmt.Errorf("fetching the files archive of %s: %w", function, err)
		}
		if cp.files, err = filesFS(archive); err != nil {
			return nil, err
		}
	}
	return cp, nil
}

// close frees the idle connections of the module's outbound client.
func (cp *caps) close() {
	if cp != nil && cp.client != nil {
		cp.client.CloseIdleConnections()
	}
}
