package wasm

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"testing/fstest" // MapFS only: a read-only in-memory fs.FS; the package does not import testing
	"time"

	"github.com/gustfaas/gust"
)

// maxFilesEntries bounds the entries of a files archive.
const maxFilesEntries = 10000

// filesFS reads a files archive (a tar of regular files and directories)
// into a read-only file system. Anything else (links, devices, paths that
// leave the root) is EINVALID: the archive comes from a user.
func filesFS(archive []byte) (fs.FS, error) {
	bad := func(format string, args ...any) error {
		return gust.Errorf(gust.EINVALID, "invalid files archive: "+format, args...)
	}
	m := fstest.MapFS{}
	tr := tar.NewReader(bytes.NewReader(archive))
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, gust.WrapError(gust.EINVALID, err, "invalid files archive: %v", err)
		}
		if n >= maxFilesEntries {
			return nil, bad("more than %d entries", maxFilesEntries)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		if name == "" || name == "." {
			continue
		}
		if !fs.ValidPath(name) || strings.Contains(name, "\\") {
			return nil, bad("entry %q is not a relative path inside the directory", h.Name)
		}
		if _, dup := m[name]; dup {
			return nil, bad("entry %q appears twice", name)
		}
		mod := h.ModTime
		if mod.IsZero() {
			mod = time.Unix(0, 0)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			m[name] = &fstest.MapFile{Mode: fs.ModeDir | 0o555, ModTime: mod}
		case tar.TypeReg:
			if h.Size > int64(len(archive)) {
				return nil, bad("entry %q claims %d bytes", name, h.Size)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, gust.WrapError(gust.EINVALID, err, "invalid files archive: reading %s: %v", name, err)
			}
			m[name] = &fstest.MapFile{Data: data, Mode: 0o444, ModTime: mod}
		default:
			return nil, bad("entry %q is a %s: only regular files and directories are allowed", name, typeName(h.Typeflag))
		}
	}
	// A file that is also the parent of another entry would make the
	// tree ambiguous.
	for name := range m {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if f, ok := m[dir]; ok && !f.Mode.IsDir() {
				return nil, bad("%q is a file and also holds %q", dir, name)
			}
		}
	}
	return m, nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "named pipe"
	}
	return fmt.Sprintf("tar entry of type %q", t)
}
