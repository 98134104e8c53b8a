package client

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gustfaas/gust"
)

// MaxFilesEntries bounds the entries of a files directory.
const MaxFilesEntries = 10000

// TarDir archives dir for a function's files (gust.Files): its regular
// files and directories, in lexical order, with modes and times zeroed,
// so the same contents always make the same archive (and digest). A
// symbolic link or any other special file is an EINVALID error naming it:
// what the function sees must be what is in the directory.
func TarDir(dir string) ([]byte, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, gust.WrapError(gust.EINVALID, err, "files directory")
	}
	if !st.IsDir() {
		return nil, gust.Errorf(gust.EINVALID, "files: %s is not a directory", dir)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	n := 0
	epoch := time.Unix(0, 0).UTC()
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		if n++; n > MaxFilesEntries {
			return gust.Errorf(gust.EINVALID, "files: %s has more than %d entries", dir, MaxFilesEntries)
		}
		name := filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o555, ModTime: epoch, Format: tar.FormatPAX})
		case d.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o444, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		default:
			return gust.Errorf(gust.EINVALID, "files: %s is not a regular file or directory (links are not followed)", path)
		}
	})
	if err != nil {
		if gust.ErrorCode(err) == gust.EINVALID {
			return nil, err
		}
		return nil, fmt.Errorf("archiving files %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("archiving files %s: %w", dir, err)
	}
	return buf.Bytes(), nil
}
