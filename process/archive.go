package process

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/gustfaas/gust"
)

// Limits bounds what an archive may unpack to. Zero fields take the
// defaults of DefaultLimits.
type Limits struct {
	MaxBytes int64 // total unpacked size; default 256 MiB (Lambda's is 250 MB)
	MaxFiles int   // entries, directories included; default 10000
	// MaxRatio is the largest unpacked/packed size ratio accepted once the
	// unpacked size passes 1 MiB: a zip bomb compresses far better than
	// any real code. Default 200.
	MaxRatio int64
}

// DefaultLimits are the archive limits used for zero fields.
var DefaultLimits = Limits{MaxBytes: 256 << 20, MaxFiles: 10000, MaxRatio: 200}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultLimits.MaxFiles
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = DefaultLimits.MaxRatio
	}
	return l
}

// ratioFloor is the unpacked size below which the compression ratio is
// not checked: small text files compress very well without being bombs.
const ratioFloor = 1 << 20

// Archive formats, told apart by their first bytes.
const (
	formatZip   = "zip"
	formatTarGz = "tar.gz"
)

func detectFormat(code []byte) (string, error) {
	switch {
	case bytes.HasPrefix(code, []byte("PK\x03\x04")):
		return formatZip, nil
	case bytes.HasPrefix(code, []byte("PK\x05\x06")):
		return "", gust.Errorf(gust.EINVALID, "code is an empty zip archive")
	case bytes.HasPrefix(code, []byte{0x1f, 0x8b}):
		return formatTarGz, nil
	}
	head := code
	if len(head) > 8 {
		head = head[:8]
	}
	return "", gust.Errorf(gust.EINVALID, "code is neither a zip nor a tar.gz archive (it starts with %q); package the executable or handler in one", head)
}

// extract unpacks code (zip or tar.gz) into dir, which must exist and be
// empty. Every write goes through an os.Root, so nothing can land outside
// dir whatever the archive holds; names are checked first anyway so that
// the error names the offending entry. Errors are EINVALID.
func extract(code []byte, dir string, lim Limits) error {
	lim = lim.withDefaults()
	format, err := detectFormat(code)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open extraction dir: %w", err)
	}
	defer root.Close()
	x := &extractor{root: root, lim: lim, packed: int64(len(code)), seen: map[string]bool{}}
	if format == formatZip {
		return x.zip(code)
	}
	return x.tarGz(code)
}

type extractor struct {
	root     *os.Root
	lim      Limits
	packed   int64
	unpacked int64
	files    int
	seen     map[string]bool
}

func invalidEntry(name, format string, args ...any) error {
	return gust.Errorf(gust.EINVALID, "archive entry %q: %s", name, fmt.Sprintf(format, args...))
}

// cleanName checks an entry name and returns it as a clean relative
// slash path ("" for the root itself).
func cleanName(name string) (string, error) {
	if name == "" {
		return "", invalidEntry(name, "empty name")
	}
	if strings.ContainsAny(name, "\x00\\") {
		return "", invalidEntry(name, "name contains a NUL or a backslash")
	}
	if strings.HasPrefix(name, "/") {
		return "", invalidEntry(name, "absolute path")
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", invalidEntry(name, "path contains '..'")
		}
	}
	c := path.Clean(name)
	if c == "." {
		return "", nil
	}
	return c, nil
}

// count charges one entry against the limits.
func (x *extractor) count(name string) error {
	x.files++
	if x.files > x.lim.MaxFiles {
		return invalidEntry(name, "archive has more than %d entries", x.lim.MaxFiles)
	}
	return nil
}

func (x *extractor) mkdirAll(name string) error {
	if name == "" {
		return nil
	}
	if err := x.root.MkdirAll(name, 0o755); err != nil {
		return invalidEntry(name, "cannot create directory: %v", err)
	}
	return nil
}

// file writes one regular file. Exec bits are kept as one: 0755 or 0644.
func (x *extractor) file(name string, mode fs.FileMode, r io.Reader) error {
	if x.seen[name] {
		return invalidEntry(name, "appears twice in the archive")
	}
	x.seen[name] = true
	if err := x.mkdirAll(path.Dir(name)); err != nil && path.Dir(name) != "." {
		return err
	}
	perm := fs.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return invalidEntry(name, "cannot create file: %v", err)
	}
	// Count what is really written, not what the header claims, and
	// stop at the first byte past either limit: a zip bomb is refused
	// before it fills the disk, not after.
	sizeLeft := x.lim.MaxBytes - x.unpacked
	ratioMax := max(ratioFloor, x.packed*x.lim.MaxRatio)
	ratioLeft := ratioMax - x.unpacked
	budget := min(sizeLeft, ratioLeft)
	n, err := io.Copy(f, io.LimitReader(r, budget+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	x.unpacked += n
	if n > budget {
		if sizeLeft <= ratioLeft {
			return invalidEntry(name, "archive unpacks to more than %d bytes", x.lim.MaxBytes)
		}
		return invalidEntry(name, "archive unpacks to more than %d bytes from %d, a compression ratio above %d: refusing a likely zip bomb", ratioMax, x.packed, x.lim.MaxRatio)
	}
	if err != nil {
		return invalidEntry(name, "cannot unpack: %v", err)
	}
	// Umask may have cleared bits; set them as decided.
	if err := x.root.Chmod(name, perm); err != nil {
		return fmt.Errorf("chmod %s: %w", name, err)
	}
	return nil
}

// symlink creates a link whose target stays inside the archive. A target
// with no '..' and no leading '/' can only descend from the link's own
// directory, so no chain of such links leads outside.
func (x *extractor) symlink(name, target string) error {
	if target == "" || strings.HasPrefix(target, "/") {
		return invalidEntry(name, "symlink to %q points outside the archive", target)
	}
	for _, el := range strings.Split(target, "/") {
		if el == ".." {
			return invalidEntry(name, "symlink to %q points outside the archive", target)
		}
	}
	if x.seen[name] {
		return invalidEntry(name, "appears twice in the archive")
	}
	x.seen[name] = true
	if err := x.mkdirAll(path.Dir(name)); err != nil && path.Dir(name) != "." {
		return err
	}
	if err := x.root.Symlink(target, name); err != nil {
		return invalidEntry(name, "cannot create symlink: %v", err)
	}
	return nil
}

func (x *extractor) zip(code []byte) error {
	zr, err := zip.NewReader(bytes.NewReader(code), int64(len(code)))
	if err != nil {
		return gust.WrapError(gust.EINVALID, err, "code is not a readable zip archive: %v", err)
	}
	for _, zf := range zr.File {
		if err := x.count(zf.Name); err != nil {
			return err
		}
		name, err := cleanName(zf.Name)
		if err != nil {
			return err
		}
		mode := zf.Mode()
		switch {
		case mode.IsDir():
			if err := x.mkdirAll(name); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			if name == "" {
				return invalidEntry(zf.Name, "the root cannot be a symlink")
			}
			rc, err := zf.Open()
			if err != nil {
				return invalidEntry(zf.Name, "cannot read: %v", err)
			}
			target, err := io.ReadAll(io.LimitReader(rc, 4096))
			rc.Close()
			if err != nil {
				return invalidEntry(zf.Name, "cannot read: %v", err)
			}
			if err := x.symlink(name, string(target)); err != nil {
				return err
			}
		case mode.IsRegular():
			if name == "" {
				return invalidEntry(zf.Name, "not a file name")
			}
			if zf.UncompressedSize64 > uint64(x.lim.MaxBytes) {
				return invalidEntry(zf.Name, "unpacks to %d bytes, more than the limit of %d", zf.UncompressedSize64, x.lim.MaxBytes)
			}
			rc, err := zf.Open()
			if err != nil {
				return invalidEntry(zf.Name, "cannot read: %v", err)
			}
			err = x.file(name, mode, rc)
			rc.Close()
			if err != nil {
				return err
			}
		default:
			return invalidEntry(zf.Name, "unsupported file type %s (only files, directories and symlinks)", mode.Type())
		}
	}
	return nil
}

func (x *extractor) tarGz(code []byte) error {
	gz, err := gzip.NewReader(bytes.NewReader(code))
	if err != nil {
		return gust.WrapError(gust.EINVALID, err, "code is not a readable tar.gz archive: %v", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if x.files == 0 {
				return gust.Errorf(gust.EINVALID, "code is an empty tar.gz archive")
			}
			return nil
		}
		if err != nil {
			return gust.WrapError(gust.EINVALID, err, "code is not a readable tar.gz archive: %v", err)
		}
		if err := x.count(h.Name); err != nil {
			return err
		}
		name, err := cleanName(h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := x.mkdirAll(name); err != nil {
				return err
			}
		case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old archivers still write TypeRegA
			if name == "" {
				return invalidEntry(h.Name, "not a file name")
			}
			if h.Size > x.lim.MaxBytes {
				return invalidEntry(h.Name, "unpacks to %d bytes, more than the limit of %d", h.Size, x.lim.MaxBytes)
			}
			if err := x.file(name, fs.FileMode(h.Mode), tr); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if name == "" {
				return invalidEntry(h.Name, "the root cannot be a symlink")
			}
			if err := x.symlink(name, h.Linkname); err != nil {
				return err
			}
		case tar.TypeLink:
			return invalidEntry(h.Name, "hard links are not supported")
		case tar.TypeChar, tar.TypeBlock:
			return invalidEntry(h.Name, "device files are not allowed")
		case tar.TypeFifo:
			return invalidEntry(h.Name, "named pipes are not allowed")
		case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
			// Metadata that tar.Reader has already applied.
		default:
			return invalidEntry(h.Name, "unsupported tar entry type %q", string(h.Typeflag))
		}
	}
}
