package process

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A driver's base cgroup is named for the gust process that owns it:
// gust-PID-START, START being the process's start time in clock ticks
// after boot (field 22 of /proc/PID/stat). The pair names one process for
// the life of the machine, however PIDs are reused, and needs no clock:
// a cgroup whose owner is gone is told apart from one of a live gust (of
// another node on this machine) exactly. Older gust named it gust-PID.

// ownerCgroupName is the name of this process's base cgroup.
func ownerCgroupName() string {
	pid := os.Getpid()
	if start, ok := procStat(pid); ok {
		return fmt.Sprintf("gust-%d-%d", pid, start.start)
	}
	return fmt.Sprintf("gust-%d", pid)
}

// parseOwner reads the owner out of a base cgroup's name: its PID, and
// its start time if the name has one.
func parseOwner(name string) (pid int, start uint64, hasStart, ok bool) {
	rest, ok := strings.CutPrefix(name, "gust-")
	if !ok {
		return 0, 0, false, false
	}
	p, s, hasStart := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(p)
	if err != nil || pid <= 0 {
		return 0, 0, false, false
	}
	if hasStart {
		if start, err = strconv.ParseUint(s, 10, 64); err != nil {
			return 0, 0, false, false
		}
	}
	return pid, start, hasStart, true
}

// statInfo is what the reaper needs of /proc/PID/stat.
type statInfo struct {
	ppid  int
	start uint64 // clock ticks after boot
}

// procStat reads a running process's parent and start time; false if no
// such process runs (a zombie has run its course: it counts as gone).
func procStat(pid int) (statInfo, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return statInfo{}, false
	}
	// The command name may hold spaces and parentheses: fields start
	// after its last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return statInfo{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[19] field 22.
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return statInfo{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil {
		return statInfo{}, false
	}
	return statInfo{ppid: ppid, start: start}, true
}

// ownerAlive reports whether the gust process that named base cgroup dir
// still runs. Where the name lacks a start time (older gust), its owner
// counts as alive if any process in the cgroup is its child (an
// instance's helper is gust's child until gust dies; then it is
// re-parented, never to a process that reuses gust's PID); with
// processes in it and none a child, it is gone; an empty cgroup of a
// running PID cannot be told, and is left.
func ownerAlive(dir string, pid int, start uint64, hasStart bool) bool {
	st, ok := procStat(pid)
	if !ok {
		return false
	}
	if hasStart {
		return st.start == start
	}
	tasks := treeTasks(dir)
	if len(tasks) == 0 {
		return true
	}
	for _, t := range tasks {
		if ts, ok := procStat(t); ok && ts.ppid == pid {
			return true
		}
	}
	return false
}

// treeTasks lists the processes in cgroup dir and its descendants.
func treeTasks(dir string) []int {
	var pids []int
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil && n > 0 {
				pids = append(pids, n)
			}
		}
		return nil
	})
	return pids
}

// reapStaleWait bounds how long the reaper waits for the processes it
// killed in one cgroup to be gone.
const reapStaleWait = 5 * time.Second

// reapStale kills every process left in the base cgroups, under parents,
// of gust processes that are gone, and removes those cgroups. A gust
// killed with SIGKILL (or by the OOM killer, or a crash of the machine's
// init) had no chance to stop its instances: without this they would run
// on as the users this process is about to hand out again, and their
// cgroups would pile up. The cgroups of live gust processes (other nodes
// on this machine, other drivers of this process) are not touched. v2
// kills through cgroup.kill where the kernel has it.
func reapStale(parents []string, v2 bool, log *slog.Logger) {
	for _, parent := range parents {
		entries, err := os.ReadDir(parent)
		if err != nil {
			continue
		}
		for _, e := range entries {
			pid, start, hasStart, ok := parseOwner(e.Name())
			if !ok || !e.IsDir() {
				continue
			}
			dir := filepath.Join(parent, e.Name())
			if ownerAlive(dir, pid, start, hasStart) {
				continue
			}
			killed, removed, left := reapTree(dir, v2)
			switch {
			case left != nil:
				log.Warn("process driver: could not reap the cgroup of a gust process that is gone",
					"cgroup", dir, "killed", killed, "err", left)
			case killed > 0:
				log.Info("process driver: reaped the instances of a gust process that is gone",
					"cgroup", dir, "owner_pid", pid, "killed", killed, "cgroups_removed", removed)
			default:
				log.Debug("process driver: removed the empty cgroups of a gust process that is gone",
					"cgroup", dir, "cgroups_removed", removed)
			}
		}
	}
}

// reapTree kills every process in cgroup dir and below, waits (bounded)
// for them to go, and removes the cgroups, deepest first. It returns how
// many processes it killed, how many cgroups it removed, and why it could
// not remove them all.
func reapTree(dir string, v2 bool) (killed, removed int, err error) {
	seen := map[int]bool{}
	deadline := time.Now().Add(reapStaleWait)
	for {
		tasks := treeTasks(dir)
		if len(tasks) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return len(seen), 0, fmt.Errorf("%d processes still in it after %s", len(tasks), reapStaleWait)
		}
		if v2 {
			// Kills the whole subtree, forks under way included.
			_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
		}
		for _, pid := range tasks {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			seen[pid] = true
		}
		time.Sleep(10 * time.Millisecond)
	}
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var last error
	for i := len(dirs) - 1; i >= 0; i-- {
		// A killed process leaves its cgroup once its parent has reaped
		// it: an rmdir can fail for a moment after cgroup.procs is empty.
		for try := 0; ; try++ {
			e := os.Remove(dirs[i])
			if e == nil || os.IsNotExist(e) {
				removed++
				break
			}
			if try == 50 {
				last = e
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return len(seen), removed, last
}
