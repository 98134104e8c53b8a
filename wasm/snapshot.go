package wasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/gustfaas/gust"
)

// Snapshots: the life of a reactor version with pre-initialized memory.
//
//  1. Load rewrites the module (see snapshotModule): no data section, every
//     mutable global exported. Only the rewrite is compiled. If a snapshot
//     file for this version exists and its checksum holds, it is used;
//     otherwise it is removed.
//  2. The first instance starts normally: the host copies the data
//     segments into memory and calls _initialize. The host then asks the
//     guest whether it may be captured (gust_snapshot_check), draws one
//     value of the Go runtime's generator (gust_runtime_rand) to find that
//     generator's state, and writes memory and globals to a file. That
//     instance goes on serving.
//  3. Every later instance is restored. Its shell, the rewrite instantiated
//     with its linear memory reserved but empty, was made ahead (shell.go).
//     The host maps the file over that memory as a private copy-on-write
//     mapping (or takes the memory of a closed instance instead and copies
//     the snapshot back over the pages that instance wrote; see
//     snapmem_linux.go), grows it to the captured size, sets the globals, writes fresh
//     random bytes over the runtime generator's state, and calls
//     gust_restored, which runs the SDK's OnRestore hooks. _initialize does
//     not run. An instance costs the pages it writes. The first restored
//     instance records which pages its first call touched, and later
//     restores populate those at once (hotPages).
//  4. Whatever fails on the way is logged and the version falls back to
//     normal starts; a restore that fails for a reason other than the
//     guest's own hook falls back for that instance.

// snapshotFormat is the version of the snapshot file format. Bump it when
// the format or what a snapshot means changes: old files are then ignored.
const snapshotFormat = 1

// Exports of the snapshot ABI (the SDK defines them).
const (
	exportRestored      = "gust_restored"
	exportSnapshotCheck = "gust_snapshot_check"
	exportRuntimeRand   = "gust_runtime_rand"
)

// snapshotMagic starts every snapshot file.
var snapshotMagic = []byte("GUSTSNAP")

// memAlign aligns the memory image in the file, so it can be mapped on
// any page size up to wasm's own page.
const memAlign = 1 << 16

// Size of the Go runtime's chacha8rand.State: buf [32]uint64,
// seed [4]uint64, then i, n and c as uint32.
const (
	randStateBuf  = 0
	randStateSeed = 256
	randStateI    = 288
	randStateN    = 292
	randStateC    = 296
	randStateSize = 300
)

// States of a snapshotter.
const (
	snapPending  = iota // no image; the next normal start captures one
	snapBuilding        // an instance is being captured
	snapReady           // img holds a verified image
	snapFailed          // reason says why; instances start normally
)

// snapshotter holds the snapshot of one loaded module.
type snapshotter struct {
	log  *slog.Logger
	lay  *layout
	dir  string // "" means an unlinked temporary file
	key  [32]byte
	path string // file name in dir (when dir != "")

	mu     sync.Mutex
	state  int
	reason string
	img    *image
}

// image is a verified snapshot, open for mapping.
type image struct {
	f       *os.File
	fd      int
	memOff  int64
	memSize uint64
	globals []globalValue
	randOff int64 // offset of the runtime's generator state, or -1

	// hot is what the first call of a restored instance touched, once an
	// instance has found out (see hotPages); learning is set while one is
	// finding out.
	hot      atomic.Pointer[hotPages]
	learning atomic.Bool
	view     imageView // what recycled memories are reset from (Linux)
}

type globalValue struct {
	export string
	index  uint32
	value  uint64
}

// snapshotKey identifies what a snapshot captures: the code, the wazero
// that ran it, the format, and everything an instance's initialization can
// see of its configuration. That is what module.config gives the guest
// (its arguments: the function's name; its environment, secrets included
// when there are any; its files mount and the files in it), the memory
// limit, and what the host functions would answer. A field missing here
// restores one version's memory into another: v2 with new files would
// serve what v1's init read from v1's files. The boot id is in it because
// the guest's monotonic clock is the host's: after a reboot a snapshot's
// recorded times would lie in the future.
func snapshotKey(code []byte, function string, spec gust.Spec) [32]byte {
	h := sha256.New()
	sum := sha256.Sum256(code)
	fmt.Fprintf(h, "gust-snapshot\x00%d\x00%s\x00%x\x00%s\x00%d\x00%s\x00", snapshotFormat, wazeroVersion(), sum, function, spec.MemoryMB, bootID())
	keys := make([]string, 0, len(spec.Env))
	for k := range spec.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "env:%d:%s=%d:%s\x00", len(k), k, len(spec.Env[k]), spec.Env[k])
	}
	// A files mount is a preopened directory the guest's runtime records
	// at init, and init may read the files: the archive's digest names
	// their content.
	if spec.Files != nil {
		fmt.Fprintf(h, "files:%s:%d:%s\x00", gust.FilesMount, len(spec.Files.Digest), spec.Files.Digest)
	}
	// Host functions refuse every call made outside a request, init's
	// included, whatever is granted; the grants are keyed all the same, so
	// that stays a choice of the host functions and not a hidden
	// assumption of snapshots.
	hosts := append([]string(nil), spec.AllowedHosts...)
	sort.Strings(hosts)
	for _, host := range hosts {
		fmt.Fprintf(h, "host:%d:%s\x00", len(host), host)
	}
	fmt.Fprintf(h, "kv:%t\x00", spec.KV)
	var key [32]byte
	h.Sum(key[:0])
	return key
}

// wazeroVersion names the wazero build: the directory its compiled code is
// cached in carries its exact version (gust's patched copy bumps it), which
// the module's version in the build info does not (a replace directive
// names no version).
func wazeroVersion() string { return wazero.CompilationCacheDirName() }

var bootID = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return goruntime.GOOS
	}
	return string(bytes.TrimSpace(b))
})

func newSnapshotter(log *slog.Logger, lay *layout, dir string, key [32]byte) *snapshotter {
	s := &snapshotter{log: log, lay: lay, dir: dir, key: key}
	if dir != "" {
		s.path = filepath.Join(dir, fmt.Sprintf("snapshot-%x.snap", key[:16]))
	}
	return s
}

// loadExisting takes a snapshot file left by an earlier run if it is
// sound, and removes it if it is not.
func (s *snapshotter) loadExisting(limit uint64) {
	if s.path == "" {
		return
	}
	f, err := os.Open(s.path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("wasm snapshot unreadable; rebuilding it", "path", s.path, "err", err)
			// Out of the way of the rebuilt one, if it can be.
			_ = os.Remove(s.path)
		}
		return
	}
	img, err := openImage(f, s.key, limit)
	if err != nil {
		f.Close()
		s.log.Warn("wasm snapshot rejected; rebuilding it", "path", s.path, "err", err)
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("wasm snapshot: remove rejected file", "path", s.path, "err", err)
		}
		return
	}
	s.img, s.state = img, snapReady
}

// ready returns the image if there is one.
func (s *snapshotter) ready() *image {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.img
}

// claim reports whether the caller should capture the instance it just
// started; at most one caller at a time does.
func (s *snapshotter) claim() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != snapPending {
		return false
	}
	s.state = snapBuilding
	return true
}

// fail gives up on snapshots for the module; instances start normally.
func (s *snapshotter) fail(function string, version int, reason string) {
	s.mu.Lock()
	s.state, s.reason = snapFailed, reason
	s.mu.Unlock()
	s.log.Info("wasm snapshot not used; instances start normally", "function", function, "version", version, "reason", reason)
}

// stateString describes the snapshot for people.
func (s *snapshotter) stateString() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case snapReady:
		return "ready"
	case snapFailed:
		return "unsupported: " + s.reason
	}
	return "pending"
}

func (s *snapshotter) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.img != nil {
		s.img.view.close()
		s.img.f.Close()
		s.img = nil
		if s.state == snapReady {
			s.state = snapFailed
			s.reason = "module closed"
		}
	}
}

// capture takes the snapshot of r, a reactor that has just run
// _initialize and nothing else. A non-empty reason means the module cannot
// be snapshotted; err means this attempt failed.
func (s *snapshotter) capture(ctx context.Context, r *reactor) (reason string, err error) {
	mod := r.mod
	if f := mod.ExportedFunction(exportSnapshotCheck); f != nil {
		if err := f.CallWithStack(ctx, r.stack[:]); err != nil {
			return "", fmt.Errorf("call %s: %w", exportSnapshotCheck, err)
		}
		switch code := uint32(r.stack[0]); code {
		case 0:
		case 1:
			return "initialization left goroutines running; they cannot be cloned into other instances", nil
		default:
			return "the function refused to be snapshotted (code " + strconv.FormatUint(uint64(code), 10) + ")", nil
		}
	}
	randOff := int64(-1)
	if f := mod.ExportedFunction(exportRuntimeRand); f != nil {
		if err := f.CallWithStack(ctx, r.stack[:]); err != nil {
			return "", fmt.Errorf("call %s: %w", exportRuntimeRand, err)
		}
		mem, _ := r.mem.Read(0, r.mem.Size())
		randOff = findRandState(mem, r.stack[0])
		if randOff < 0 {
			s.log.Info("wasm snapshot: the Go runtime's random state was not found; restored instances share math/rand's top-level sequence", "function", r.m.function, "version", r.m.version)
		}
	}
	globals := make([]globalValue, 0, len(s.lay.globals))
	for _, idx := range s.lay.globals {
		name := globalExportPrefix + strconv.FormatUint(uint64(idx), 10)
		g := mod.ExportedGlobal(name)
		if g == nil {
			return "", fmt.Errorf("rewritten module lacks export %s", name)
		}
		globals = append(globals, globalValue{export: name, index: idx, value: g.Get()})
	}
	mem, ok := r.mem.Read(0, r.mem.Size())
	if !ok {
		return "", errors.New("read linear memory")
	}
	f, err := s.write(mem, globals, randOff)
	if err != nil {
		return "", err
	}
	img, err := openImage(f, s.key, uint64(len(mem)))
	if err != nil {
		f.Close()
		return "", fmt.Errorf("reopen the snapshot just written: %w", err)
	}
	s.mu.Lock()
	s.img, s.state = img, snapReady
	s.mu.Unlock()
	return "", nil
}

// write writes a snapshot file and returns it open for reading. The file
// is written under a temporary name and renamed into place, so a reader
// never sees half of it; zero pages are left as holes.
func (s *snapshotter) write(mem []byte, globals []globalValue, randOff int64) (*os.File, error) {
	dir := s.dir
	if dir == "" {
		dir = os.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("snapshot dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".snapshot-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("create snapshot: %w", err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	hdr := encodeHeader(s.key, uint64(len(mem)), randOff, globals)
	sum := sha256.New()
	sum.Write(hdr)
	sum.Write(mem)
	hdr = sum.Sum(hdr)
	memOff := alignUp(int64(len(hdr)), memAlign)
	if _, err := tmp.WriteAt(hdr, 0); err != nil {
		return nil, fmt.Errorf("write snapshot: %w", err)
	}
	const chunk = 4096
	for off := 0; off < len(mem); off += chunk {
		page := mem[off:min(off+chunk, len(mem))]
		if allZero(page) {
			continue
		}
		if _, err := tmp.WriteAt(page, memOff+int64(off)); err != nil {
			return nil, fmt.Errorf("write snapshot: %w", err)
		}
	}
	if err := tmp.Truncate(memOff + int64(len(mem))); err != nil {
		return nil, fmt.Errorf("write snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write snapshot: %w", err)
	}
	name := s.path
	if name == "" {
		name = tmpName
	} else if err := os.Rename(tmpName, name); err != nil {
		return nil, fmt.Errorf("write snapshot: %w", err)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open snapshot: %w", err)
	}
	if s.path == "" {
		// Nothing else should find it: the open file is the snapshot.
		os.Remove(name)
	}
	ok = true
	return f, nil
}

// encodeHeader returns the header of a snapshot file without its checksum:
//
//	magic[8] format:u32 headerLen:u32 memSize:u64 randOff:i64 key[32]
//	globalCount:u32 (index:u32 value:u64)*
//
// headerLen counts the 32-byte sha256 that follows, over the header and
// the memory image.
func encodeHeader(key [32]byte, memSize uint64, randOff int64, globals []globalValue) []byte {
	n := 8 + 4 + 4 + 8 + 8 + 32 + 4 + 12*len(globals)
	b := make([]byte, 0, n+sha256.Size)
	b = append(b, snapshotMagic...)
	b = binary.LittleEndian.AppendUint32(b, snapshotFormat)
	b = binary.LittleEndian.AppendUint32(b, uint32(n+sha256.Size))
	b = binary.LittleEndian.AppendUint64(b, memSize)
	b = binary.LittleEndian.AppendUint64(b, uint64(randOff))
	b = append(b, key[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(globals)))
	for _, g := range globals {
		b = binary.LittleEndian.AppendUint32(b, g.index)
		b = binary.LittleEndian.AppendUint64(b, g.value)
	}
	return b
}

// openImage checks a snapshot file against the key, the memory limit and
// its checksum, and returns it ready for mapping. It reads the whole file:
// a snapshot is trusted only once its every byte has been checked.
func openImage(f *os.File, key [32]byte, limit uint64) (*image, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	fixed := make([]byte, 68)
	if _, err := f.ReadAt(fixed, 0); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if !bytes.Equal(fixed[:8], snapshotMagic) {
		return nil, errors.New("not a snapshot file")
	}
	if v := binary.LittleEndian.Uint32(fixed[8:]); v != snapshotFormat {
		return nil, fmt.Errorf("snapshot format %d, want %d", v, snapshotFormat)
	}
	hdrLen := int64(binary.LittleEndian.Uint32(fixed[12:]))
	memSize := binary.LittleEndian.Uint64(fixed[16:])
	randOff := int64(binary.LittleEndian.Uint64(fixed[24:]))
	if !bytes.Equal(fixed[32:64], key[:]) {
		return nil, errors.New("snapshot of other code or configuration")
	}
	count := int64(binary.LittleEndian.Uint32(fixed[64:]))
	if hdrLen != 68+12*count+sha256.Size || hdrLen > memAlign {
		return nil, fmt.Errorf("bad header length %d", hdrLen)
	}
	if memSize == 0 || memSize%(1<<16) != 0 || memSize > limit {
		return nil, fmt.Errorf("bad memory size %d (limit %d)", memSize, limit)
	}
	if randOff != -1 && (randOff < 0 || uint64(randOff)+randStateSize > memSize) {
		return nil, fmt.Errorf("bad random state offset %d", randOff)
	}
	memOff := alignUp(hdrLen, memAlign)
	if st.Size() != memOff+int64(memSize) {
		return nil, fmt.Errorf("file is %d bytes, want %d", st.Size(), memOff+int64(memSize))
	}
	hdr := make([]byte, hdrLen)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	sum := sha256.New()
	sum.Write(hdr[:hdrLen-sha256.Size])
	if _, err := io.Copy(sum, io.NewSectionReader(f, memOff, int64(memSize))); err != nil {
		return nil, fmt.Errorf("read memory image: %w", err)
	}
	if !bytes.Equal(sum.Sum(nil), hdr[hdrLen-sha256.Size:]) {
		return nil, errors.New("checksum mismatch")
	}
	img := &image{f: f, fd: int(f.Fd()), memOff: memOff, memSize: memSize, randOff: randOff}
	for i := int64(0); i < count; i++ {
		p := hdr[68+12*i:]
		idx := binary.LittleEndian.Uint32(p)
		img.globals = append(img.globals, globalValue{
			export: globalExportPrefix + strconv.FormatUint(uint64(idx), 10),
			index:  idx,
			value:  binary.LittleEndian.Uint64(p[4:]),
		})
	}
	return img, nil
}

// findRandState returns the offset in mem of the Go runtime's per-M
// chacha8rand.State, given x, the value the runtime's generator returned
// last: the state holds x in buf[i-1]. It returns -1 unless exactly one
// place fits, so a layout it does not know is left alone.
func findRandState(mem []byte, x uint64) int64 {
	found := int64(-1)
	for a := 0; a+8 <= len(mem); a += 8 {
		if binary.LittleEndian.Uint64(mem[a:]) != x {
			continue
		}
		for k := 0; k < 32 && a-8*k >= 0; k++ {
			base := a - 8*k
			if base+randStateSize > len(mem) {
				continue
			}
			i := binary.LittleEndian.Uint32(mem[base+randStateI:])
			n := binary.LittleEndian.Uint32(mem[base+randStateN:])
			c := binary.LittleEndian.Uint32(mem[base+randStateC:])
			if i == uint32(k+1) && i <= n && n <= 32 && c < 16 && c%4 == 0 {
				if found >= 0 {
					return -1
				}
				found = int64(base)
			}
		}
	}
	return found
}

// reseed gives a restored instance's runtime generator a state of its own:
// fresh random bytes for the values it will hand out next and for the seed
// it derives the following blocks from. Its counters stay.
func reseed(mem api.Memory, off int64) error {
	var b [randStateI]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	if !mem.Write(uint32(off), b[:]) {
		return errors.New("random state outside memory")
	}
	return nil
}

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
