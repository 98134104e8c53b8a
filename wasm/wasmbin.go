package wasm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// This file reads and rewrites just enough of the WebAssembly binary
// format for snapshots: the import, global, export, data, data-count and
// start sections. Everything else is copied byte for byte.

// Section ids of the WebAssembly binary format.
const (
	secImport    = 2
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secData      = 11
	secDataCount = 12
)

// Value types a snapshot can carry in a global: api.Global.Get returns a
// uint64, which holds these exactly.
const (
	valI32 = 0x7f
	valI64 = 0x7e
	valF32 = 0x7d
	valF64 = 0x7c
)

// globalExportPrefix names the exports a snapshot module adds for mutable
// globals, so the host can read and set them.
const globalExportPrefix = "gust.snapshot.global."

// dataSegment is an active data segment: bytes copied to memory at offset
// when an instance is created.
type dataSegment struct {
	offset uint32
	data   []byte
}

// layout is what the snapshot machinery needs to know of a module.
type layout struct {
	data    []dataSegment
	globals []uint32 // indices of the module's own mutable globals
	exports map[string]bool
}

// snapshotModule is a rewrite of a module for snapshots: its data section
// is removed (the host applies the segments itself when an instance starts
// normally, and a restored instance gets its memory from the snapshot, so
// nothing copies data twice or dirties pages it does not need), and every
// mutable global is exported as globalExportPrefix+index, so the host can
// read the globals after _initialize and set them on restore.
//
// It refuses modules whose state it cannot capture, with the reason: a
// start function (it would run again at every instantiation), passive data
// segments or a data-count section (code may re-read segments the rewrite
// removed), imported or several memories, data offsets that are not
// constants, and mutable globals of types a uint64 cannot hold.
func snapshotModule(code []byte) ([]byte, *layout, error) {
	if len(code) < 8 {
		return nil, nil, errors.New("module too short")
	}
	out := bytes.NewBuffer(make([]byte, 0, len(code)+256))
	out.Write(code[:8])
	lay := &layout{exports: map[string]bool{}}
	var importedGlobals uint32
	memories := 0
	var exportSec []byte
	exportWritten := false
	p := code[8:]
	for len(p) > 0 {
		id := p[0]
		r := reader{b: p[1:]}
		size := r.u32()
		if r.err != nil || uint64(size) > uint64(len(r.b)) {
			return nil, nil, errors.New("truncated section header")
		}
		body := r.b[:size]
		whole := p[:len(p)-len(r.b)+int(size)]
		p = r.b[size:]
		switch id {
		case secImport:
			n, err := parseImports(body, &memories)
			if err != nil {
				return nil, nil, fmt.Errorf("import section: %w", err)
			}
			importedGlobals = n
			if memories > 0 {
				return nil, nil, errors.New("module imports its memory")
			}
		case secMemory:
			r := reader{b: body}
			memories += int(r.u32())
			if r.err != nil {
				return nil, nil, fmt.Errorf("memory section: %w", r.err)
			}
		case secGlobal:
			g, err := parseGlobals(body, importedGlobals)
			if err != nil {
				return nil, nil, fmt.Errorf("global section: %w", err)
			}
			lay.globals = g
		case secExport:
			exportSec = body
			continue // written below, with the added exports
		case secStart:
			return nil, nil, errors.New("module has a start function, which would run again in every instance")
		case secDataCount:
			return nil, nil, errors.New("module has a data-count section: its code may read data segments after instantiation")
		case secData:
			segs, err := parseData(body)
			if err != nil {
				return nil, nil, fmt.Errorf("data section: %w", err)
			}
			lay.data = segs
			continue // dropped: see the doc
		}
		if id > secExport && id != 0 && !exportWritten {
			// The export section comes before every section with a higher
			// id; write it (or a new one) in its place.
			if err := writeExports(out, exportSec, lay); err != nil {
				return nil, nil, err
			}
			exportWritten = true
		}
		out.Write(whole)
	}
	if !exportWritten {
		if err := writeExports(out, exportSec, lay); err != nil {
			return nil, nil, err
		}
	}
	if memories != 1 {
		return nil, nil, fmt.Errorf("module defines %d memories, want 1", memories)
	}
	return out.Bytes(), lay, nil
}

// writeExports writes an export section: the module's exports (old, the
// section body, may be nil) and one more for each mutable global.
func writeExports(out *bytes.Buffer, old []byte, lay *layout) error {
	var entries []byte
	var n uint32
	if old != nil {
		r := reader{b: old}
		n = r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			name := r.bytes()
			r.byte()
			r.u32()
			lay.exports[string(name)] = true
		}
		if r.err != nil {
			return fmt.Errorf("export section: %w", r.err)
		}
		entries = append(entries, old[lebLen(old):]...)
	}
	for _, g := range lay.globals {
		name := globalExportPrefix + strconv.FormatUint(uint64(g), 10)
		if lay.exports[name] {
			return fmt.Errorf("module already exports %q", name)
		}
		entries = binary.AppendUvarint(entries, uint64(len(name)))
		entries = append(entries, name...)
		entries = append(entries, 3) // global
		entries = binary.AppendUvarint(entries, uint64(g))
		n++
	}
	body := binary.AppendUvarint(nil, uint64(n))
	body = append(body, entries...)
	out.WriteByte(secExport)
	var sz [binary.MaxVarintLen32]byte
	out.Write(binary.AppendUvarint(sz[:0], uint64(len(body))))
	out.Write(body)
	return nil
}

// lebLen returns the length of the unsigned LEB128 number b starts with.
func lebLen(b []byte) int {
	for i, c := range b {
		if c&0x80 == 0 {
			return i + 1
		}
	}
	return len(b)
}

// parseImports counts imported globals and memories, skipping the rest.
func parseImports(b []byte, memories *int) (uint32, error) {
	r := reader{b: b}
	n := r.u32()
	var globals uint32
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.bytes()
		r.bytes()
		switch kind := r.byte(); kind {
		case 0: // function
			r.u32()
		case 1: // table
			r.byte()
			r.limits()
		case 2: // memory
			r.limits()
			*memories++
		case 3: // global
			r.byte()
			r.byte()
			globals++
		case 4: // tag
			r.byte()
			r.u32()
		default:
			return 0, fmt.Errorf("unknown import kind %#x", kind)
		}
	}
	return globals, r.err
}

// parseGlobals returns the indices of mutable globals.
func parseGlobals(b []byte, imported uint32) ([]uint32, error) {
	r := reader{b: b}
	n := r.u32()
	var mutable []uint32
	for i := uint32(0); i < n && r.err == nil; i++ {
		typ := r.byte()
		mut := r.byte()
		r.constExpr()
		if mut != 1 {
			continue
		}
		switch typ {
		case valI32, valI64, valF32, valF64:
		default:
			return nil, fmt.Errorf("mutable global %d has type %#x, which a snapshot cannot hold", imported+i, typ)
		}
		mutable = append(mutable, imported+i)
	}
	return mutable, r.err
}

// parseData returns the active data segments of memory 0.
func parseData(b []byte) ([]dataSegment, error) {
	r := reader{b: b}
	n := r.u32()
	segs := make([]dataSegment, 0, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		switch flag := r.u32(); flag {
		case 0, 2:
			if flag == 2 {
				if mem := r.u32(); mem != 0 {
					return nil, fmt.Errorf("segment %d targets memory %d", i, mem)
				}
			}
			// Only "i32.const N end": an offset read from a global could
			// differ between instances.
			if op := r.byte(); op != 0x41 {
				return nil, fmt.Errorf("segment %d has a non-constant offset (opcode %#x)", i, op)
			}
			off := r.s32()
			if end := r.byte(); end != 0x0b {
				return nil, fmt.Errorf("segment %d has a non-constant offset", i)
			}
			segs = append(segs, dataSegment{offset: uint32(off), data: r.bytes()})
		case 1:
			return nil, fmt.Errorf("segment %d is passive", i)
		default:
			return nil, fmt.Errorf("segment %d has unknown kind %d", i, flag)
		}
	}
	return segs, r.err
}

// reader decodes the primitives of the binary format. The first error
// sticks; later reads return zero values.
type reader struct {
	b   []byte
	err error
}

var errBinTruncated = errors.New("truncated")

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.fail(errBinTruncated)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) u32() uint32 {
	v, n := binary.Uvarint(r.b)
	if r.err != nil || n <= 0 || v > 1<<32-1 {
		r.fail(errBinTruncated)
		return 0
	}
	r.b = r.b[n:]
	return uint32(v)
}

// sleb reads a signed LEB128 number of at most bits bits.
func (r *reader) sleb(bits uint) int64 {
	var v int64
	var shift uint
	for {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v
		}
		if shift >= bits+7 {
			r.fail(errors.New("LEB128 number too long"))
			return 0
		}
	}
}

func (r *reader) s32() int32 { return int32(r.sleb(32)) }

func (r *reader) bytes() []byte {
	n := r.u32()
	if r.err != nil || uint64(n) > uint64(len(r.b)) {
		r.fail(errBinTruncated)
		return nil
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b
}

func (r *reader) skip(n int) {
	if r.err != nil || n > len(r.b) {
		r.fail(errBinTruncated)
		return
	}
	r.b = r.b[n:]
}

func (r *reader) limits() {
	flags := r.byte()
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}

// constExpr skips a constant expression up to and including its end.
func (r *reader) constExpr() {
	for r.err == nil {
		switch op := r.byte(); op {
		case 0x0b: // end
			return
		case 0x41: // i32.const
			r.sleb(32)
		case 0x42: // i64.const
			r.sleb(64)
		case 0x43: // f32.const
			r.skip(4)
		case 0x44: // f64.const
			r.skip(8)
		case 0x23, 0xd2: // global.get, ref.func
			r.u32()
		case 0xd0: // ref.null
			r.byte()
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended-const arithmetic
		case 0xfd: // v128.const
			if sub := r.u32(); sub != 12 {
				r.fail(fmt.Errorf("unsupported instruction 0xfd %d in a constant expression", sub))
				return
			}
			r.skip(16)
		default:
			r.fail(fmt.Errorf("unsupported opcode %#x in a constant expression", op))
			return
		}
	}
}
