package process

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroups is where the driver creates one cgroup per instance: a directory
// of its own under the cgroup gust itself runs in, so limits nest inside
// whatever limits gust was given. v2 puts memory and pids in one tree; v1
// has a tree per controller.
type cgroups struct {
	v2      bool
	memBase string // v1 memory tree, or the v2 tree
	pidBase string // v1 pids tree ("" if that controller is missing), or the v2 tree
}

// setupCgroups finds the cgroup hierarchy and creates the driver's base
// cgroup, after reaping those of gust processes that are gone (see
// reapStale). It returns a nil *cgroups and the reason when it cannot.
func setupCgroups(log *slog.Logger) (*cgroups, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	name := ownerCgroupName()
	if mem, ok := mounts["memory"]; ok {
		parents := []string{filepath.Join(mem, own["memory"])}
		if pids, ok := mounts["pids"]; ok {
			parents = append(parents, filepath.Join(pids, own["pids"]))
		}
		reapStale(parents, false, log)
		c := &cgroups{memBase: filepath.Join(mem, own["memory"], name)}
		if err := os.Mkdir(c.memBase, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("cgroup v1: create %s: %w", c.memBase, err)
		}
		if pids, ok := mounts["pids"]; ok {
			c.pidBase = filepath.Join(pids, own["pids"], name)
			if err := os.Mkdir(c.pidBase, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				c.pidBase = ""
			}
		}
		return c, nil
	}
	if v2, ok := mounts[""]; ok {
		parent := filepath.Join(v2, own[""])
		reapStale([]string{parent}, true, log)
		ctrl, err := os.ReadFile(filepath.Join(parent, "cgroup.controllers"))
		if err != nil {
			return nil, fmt.Errorf("cgroup v2: %w", err)
		}
		if !strings.Contains(" "+string(ctrl)+" ", " memory ") {
			return nil, fmt.Errorf("cgroup v2: the memory controller is not available in %s", parent)
		}
		// Fails with EBUSY when gust's own cgroup holds processes and is
		// not the root (the "no internal processes" rule); then run gust
		// in a cgroup of its own, as systemd's Delegate=yes does.
		if err := os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+memory +pids"), 0); err != nil {
			return nil, fmt.Errorf("cgroup v2: enable memory and pids below %s: %w", parent, err)
		}
		base := filepath.Join(parent, name)
		if err := os.Mkdir(base, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("cgroup v2: create %s: %w", base, err)
		}
		if err := os.WriteFile(filepath.Join(base, "cgroup.subtree_control"), []byte("+memory +pids"), 0); err != nil {
			_ = os.Remove(base)
			return nil, fmt.Errorf("cgroup v2: enable memory and pids in %s: %w", base, err)
		}
		return &cgroups{v2: true, memBase: base, pidBase: base}, nil
	}
	return nil, errors.New("no cgroup hierarchy with the memory controller is mounted")
}

// cgroupMounts maps each v1 controller to its mount point, and "" to the
// v2 mount point.
func cgroupMounts() (map[string]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(tail) < 3 {
			continue
		}
		switch tail[0] {
		case "cgroup2":
			m[""] = fields[4]
		case "cgroup":
			for _, opt := range strings.Split(tail[2], ",") {
				if opt == "memory" || opt == "pids" {
					m[opt] = fields[4]
				}
			}
		}
	}
	return m, sc.Err()
}

// ownCgroups maps each controller (and "" for v2) to gust's own cgroup.
func ownCgroups() (map[string]string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			m[c] = parts[2]
		}
	}
	return m, nil
}

// cgroup is one instance's cgroup (one directory in v2, one per
// controller in v1).
type cgroup struct {
	v2   bool
	mem  string
	pids string // "" if the pids controller is missing (v1)
}

func (c *cgroups) create(name string, memoryMB, pidsMax int) (*cgroup, error) {
	g := &cgroup{v2: c.v2, mem: filepath.Join(c.memBase, name)}
	if err := os.Mkdir(g.mem, 0o755); err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", g.mem, err)
	}
	limit := strconv.FormatInt(int64(memoryMB)<<20, 10)
	var err error
	if c.v2 {
		g.pids = g.mem
		err = errors.Join(
			os.WriteFile(filepath.Join(g.mem, "memory.max"), []byte(limit), 0),
			// No swap, so a function over its limit is killed at once
			// instead of slowing down.
			ignoreNotExist(os.WriteFile(filepath.Join(g.mem, "memory.swap.max"), []byte("0"), 0)),
			os.WriteFile(filepath.Join(g.mem, "pids.max"), []byte(strconv.Itoa(pidsMax)), 0),
		)
	} else {
		err = os.WriteFile(filepath.Join(g.mem, "memory.limit_in_bytes"), []byte(limit), 0)
		if err == nil {
			// Present only with swap accounting on; without it there is no
			// swap to limit.
			_ = os.WriteFile(filepath.Join(g.mem, "memory.memsw.limit_in_bytes"), []byte(limit), 0)
		}
		if err == nil && c.pidBase != "" {
			g.pids = filepath.Join(c.pidBase, name)
			if err = os.Mkdir(g.pids, 0o755); err == nil {
				err = os.WriteFile(filepath.Join(g.pids, "pids.max"), []byte(strconv.Itoa(pidsMax)), 0)
			} else {
				g.pids = ""
			}
		}
	}
	if err != nil {
		g.remove()
		return nil, fmt.Errorf("set limits of cgroup %s: %w", name, err)
	}
	return g, nil
}

func ignoreNotExist(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// add moves a process into the cgroup.
func (g *cgroup) add(pid int) error {
	p := []byte(strconv.Itoa(pid))
	if err := os.WriteFile(filepath.Join(g.mem, "cgroup.procs"), p, 0); err != nil {
		return fmt.Errorf("join memory cgroup: %w", err)
	}
	if g.pids != "" && g.pids != g.mem {
		if err := os.WriteFile(filepath.Join(g.pids, "cgroup.procs"), p, 0); err != nil {
			return fmt.Errorf("join pids cgroup: %w", err)
		}
	}
	return nil
}

// oomKilled reports whether the kernel killed a process of the cgroup for
// exceeding its memory limit.
func (g *cgroup) oomKilled() bool {
	file := "memory.oom_control" // v1
	if g.v2 {
		file = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(g.mem, file))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if n, ok := strings.CutPrefix(line, "oom_kill "); ok {
			v, _ := strconv.Atoi(strings.TrimSpace(n))
			return v > 0
		}
	}
	return false
}

// killAll kills every process left in the cgroup: a function may have
// forked children that left its process group.
func (g *cgroup) killAll() {
	if g.v2 {
		if os.WriteFile(filepath.Join(g.mem, "cgroup.kill"), []byte("1"), 0) == nil {
			return
		}
	}
	for _, dir := range []string{g.mem, g.pids} {
		if dir == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// remove deletes the cgroup once its processes are gone, waiting a
// bounded time for the kernel to reap them.
func (g *cgroup) remove() {
	for _, dir := range []string{g.mem, g.pids} {
		if dir == "" || (dir == g.pids && g.pids == g.mem) {
			continue
		}
		for i := 0; i < 50; i++ {
			err := os.Remove(dir)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			g.killAll()
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func (c *cgroups) close() {
	for _, dir := range []string{c.memBase, c.pidBase} {
		if dir != "" && !(dir == c.pidBase && c.pidBase == c.memBase) {
			_ = os.Remove(dir)
		}
	}
}

// setMemory changes the memory limit, as a pre-warmed worker's is when
// it becomes a function's. Lowering it below what the cgroup uses fails
// (v1 with EBUSY once reclaim falls short; v2 kills, so v2 is checked
// first). v1 keeps memsw.limit_in_bytes at or above limit_in_bytes, so
// the two are written in the order that keeps that true.
func (g *cgroup) setMemory(memoryMB int) error {
	limit := int64(memoryMB) << 20
	b := []byte(strconv.FormatInt(limit, 10))
	if g.v2 {
		if cur, err := readInt(filepath.Join(g.mem, "memory.current")); err == nil && cur > limit {
			return fmt.Errorf("cgroup %s uses %d bytes, more than the new limit of %d", g.mem, cur, limit)
		}
		return os.WriteFile(filepath.Join(g.mem, "memory.max"), b, 0)
	}
	mem := filepath.Join(g.mem, "memory.limit_in_bytes")
	memsw := filepath.Join(g.mem, "memory.memsw.limit_in_bytes")
	cur, err := readInt(mem)
	if err != nil {
		return fmt.Errorf("read memory limit: %w", err)
	}
	_, swErr := os.Stat(memsw)
	if limit < cur {
		if err := os.WriteFile(mem, b, 0); err != nil {
			return fmt.Errorf("lower memory limit of %s: %w", g.mem, err)
		}
		if swErr == nil {
			return os.WriteFile(memsw, b, 0)
		}
		return nil
	}
	if swErr == nil {
		if err := os.WriteFile(memsw, b, 0); err != nil {
			return fmt.Errorf("raise memory limit of %s: %w", g.mem, err)
		}
	}
	return os.WriteFile(mem, b, 0)
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}
