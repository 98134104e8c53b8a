package wasm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
)

// The caches a driver keeps on disk:
//
//	CacheDir/wazero-VERSION-ARCH-OS/          compiled code, one directory per wazero build
//	SnapshotDir/gust-snapshots/BOOT/BUILD/    snapshots, per boot and per build (snapshotSubdir)
//
// Nothing in them is ever used again by another boot (a snapshot holds the
// host's monotonic clock) or another build (compiled code and snapshots are
// keyed by the build), and nothing removed them: every wazero bump and every
// reboot left a full copy behind. A driver removes them when it starts
// (pruneCaches). That is safe because the directories are the node's own: a
// node's data directory, where they are by default, is held by one node at
// a time (a lock).
//
// Directories of this boot that belong to another build, and files of the
// earlier flat snapshot layout, are left alone until they are an hour old:
// a process of another build may be running beside this one on a shared
// test cache, and removing its files would cost it a recompile or a
// capture. Another boot's directories can have no such process.

// snapshotRoot is the directory under SnapshotDir that holds snapshots.
const snapshotRoot = "gust-snapshots"

// pruneGrace is how long a directory of another build is left alone after
// it last changed.
const pruneGrace = time.Hour

// snapshotSubdir returns where this boot and build keep their snapshots,
// relative to SnapshotDir.
func snapshotSubdir() string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%d\x00%s", snapshotFormat, wazeroVersion()))
	return filepath.Join(snapshotRoot, fileSafe(bootID()), hex.EncodeToString(sum[:6]))
}

// fileSafe returns s if it is a safe file name, else a hash of it.
func fileSafe(s string) string {
	ok := s != "" && s != "." && s != ".." && len(s) <= 64
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
	}
	if ok {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// pruneCaches removes what other builds and boots left in the compiled-code
// directory and the snapshot directory (either may be ""). It logs what it
// removes and what it could not; it never fails the driver.
func pruneCaches(log *slog.Logger, cacheDir, snapshotDir string, now time.Time) {
	stale := func(e os.DirEntry) bool {
		info, err := e.Info()
		return err == nil && now.Sub(info.ModTime()) > pruneGrace
	}
	remove := func(path, why string) {
		if err := os.RemoveAll(path); err != nil {
			log.Warn("wasm cache: cannot remove "+why, "path", path, "err", err)
			return
		}
		log.Info("wasm cache: removed "+why, "path", path)
	}
	if cacheDir != "" {
		own := wazero.CompilationCacheDirName()
		for _, e := range readDir(log, cacheDir) {
			if e.IsDir() && strings.HasPrefix(e.Name(), "wazero-") && e.Name() != own && stale(e) {
				remove(filepath.Join(cacheDir, e.Name()), "compiled code of another wazero build")
			}
		}
	}
	if snapshotDir == "" {
		return
	}
	// The flat layout of earlier gust builds.
	for _, e := range readDir(log, snapshotDir) {
		n := e.Name()
		if e.Type().IsRegular() && (strings.HasPrefix(n, "snapshot-") && strings.HasSuffix(n, ".snap") ||
			strings.HasPrefix(n, ".snapshot-") && strings.HasSuffix(n, ".tmp")) && stale(e) {
			remove(filepath.Join(snapshotDir, n), "a snapshot of an earlier gust build")
		}
	}
	own := snapshotSubdir()
	ownBoot, ownBuild := filepath.Base(filepath.Dir(own)), filepath.Base(own)
	root := filepath.Join(snapshotDir, snapshotRoot)
	for _, boot := range readDir(log, root) {
		path := filepath.Join(root, boot.Name())
		if boot.Name() != ownBoot {
			remove(path, "snapshots of an earlier boot")
			continue
		}
		for _, build := range readDir(log, path) {
			if build.Name() != ownBuild && stale(build) {
				remove(filepath.Join(path, build.Name()), "snapshots of another build")
			}
		}
	}
}

// readDir lists dir; a directory that does not exist is empty.
func readDir(log *slog.Logger, dir string) []os.DirEntry {
	es, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		log.Warn("wasm cache: cannot list a cache directory to prune it", "path", dir, "err", err)
	}
	return es
}
