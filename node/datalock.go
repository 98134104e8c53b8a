package node

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/gustfaas/gust"
)

// lockFile is the file in the data dir that one node at a time holds an
// exclusive flock(2) on. Two nodes on one data dir would run two embedded
// NATS servers over one file store and corrupt it; the second is refused
// instead. The kernel drops the lock when the process dies, however it
// dies, so a SIGKILL leaves nothing to clean up.
const lockFile = "gust.lock"

// lockDataDir takes the data dir's lock for this process, or says which
// process holds it.
func lockDataDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening data dir lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			who := "another gust process"
			if pid := string(bytes.TrimSpace(holder)); pid != "" {
				who += " (pid " + pid + ")"
			}
			return nil, gust.Errorf(gust.EUNAVAILABLE, "data dir %s is in use by %s: stop it, or give this node another --data", dir, who)
		}
		return nil, fmt.Errorf("locking data dir %s: %w", dir, err)
	}
	// Only for the message above; the flock is what excludes.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
