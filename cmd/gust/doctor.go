package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust/process"
)

// doctorCheck is one prerequisite and what was found.
type doctorCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// doctorReport is what `gust doctor` finds on this machine.
type doctorReport struct {
	Isolation process.Isolation `json:"isolation"`
	Checks    []doctorCheck     `json:"checks"`
}

func newDoctorCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Report what isolation and runtimes this machine allows (no server needed)",
		Long: `doctor probes this machine the way "gust serve" does: it starts a sandboxed
/bin/true and reports which protections the process runtime can apply
(namespaces, own users, network isolation, cgroups), then checks the other
prerequisites: python3 and node for the managed runtimes, clang for the C
examples, the kernel version. Run it as the user gust serve runs as.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(out); err != nil {
				return err
			}
			rep, err := runDoctor(cmd.Context())
			if err != nil {
				return err
			}
			if out == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			printDoctor(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	outputFlag(cmd, &out)
	return cmd
}

func runDoctor(ctx context.Context) (*doctorReport, error) {
	dir, err := os.MkdirTemp("", "gust-doctor-")
	if err != nil {
		return nil, fmt.Errorf("doctor: %w", err)
	}
	defer os.RemoveAll(dir)
	d, err := process.New(process.Config{
		WorkDir:        dir,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		SpareSandboxes: -1,
	})
	if err != nil {
		return nil, fmt.Errorf("doctor: %w", err)
	}
	defer d.Close(ctx)
	iso := d.Isolation()
	rep := &doctorReport{Isolation: iso}
	add := func(name string, ok bool, detail string) {
		rep.Checks = append(rep.Checks, doctorCheck{Name: name, OK: ok, Detail: detail})
	}
	add("root", os.Geteuid() == 0, fmt.Sprintf("euid %d (the sandbox needs root)", os.Geteuid()))
	add("kernel", runtime.GOOS == "linux", kernelVersion())
	cg := iso.Cgroup
	if cg == "" {
		add("cgroups", false, "no usable memory cgroup: memory is bounded with RLIMIT_AS only")
	} else {
		add("cgroups", true, cg+" (memory and pids limits)")
	}
	for _, p := range []struct{ name, bin, why string }{
		{"python3", "python3", "the python3 runtime"},
		{"node", "node", "the nodejs runtime"},
		{"clang", "clang", "building the C examples to WebAssembly"},
	} {
		// Functions get PATH /usr/local/bin:/usr/bin:/bin, so the
		// interpreters are looked up there, as the driver does.
		path, err := lookInPath(p.bin, "/usr/local/bin:/usr/bin:/bin")
		if p.bin == "clang" {
			path, err = exec.LookPath(p.bin)
		}
		if err != nil {
			add(p.name, false, "not found: needed for "+p.why)
			continue
		}
		add(p.name, true, path+" "+toolVersion(ctx, path))
	}
	return rep, nil
}

func kernelVersion() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return runtime.GOOS
	}
	return runtime.GOOS + " " + strings.TrimSpace(string(b))
}

func toolVersion(ctx context.Context, path string) string {
	b, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return "(" + line + ")"
}

func printDoctor(w io.Writer, rep *doctorReport) {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "NO"
	}
	iso := rep.Isolation
	fmt.Fprintln(w, "process sandbox:")
	fmt.Fprintf(w, "  own user per function:            %s\n", yes(iso.OwnUser))
	fmt.Fprintf(w, "  mount/pid/ipc/uts namespaces:     %s\n", yes(iso.Namespaces))
	fmt.Fprintf(w, "  network namespace (no egress):    %s\n", yes(iso.Network))
	cg := iso.Cgroup
	if cg == "" {
		cg = "NO (RLIMIT_AS fallback)"
	}
	fmt.Fprintf(w, "  cgroup memory and pids limits:    %s\n", cg)
	for _, n := range iso.Notes {
		fmt.Fprintf(w, "  ! %s\n", n)
	}
	fmt.Fprintln(w, "prerequisites:")
	for _, c := range rep.Checks {
		mark := "ok "
		if !c.OK {
			mark = "-- "
		}
		fmt.Fprintf(w, "  %s %-8s %s\n", mark, c.Name, c.Detail)
	}
}

func lookInPath(name, path string) (string, error) {
	for _, dir := range strings.Split(path, ":") {
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not in %s", name, path)
}
