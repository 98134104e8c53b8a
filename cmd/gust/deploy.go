package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/process"
)

func newDeployCmd(a *app) *cobra.Command {
	var (
		file string
		m    client.Manifest
		env  []string
		// Durations are read as time.Duration (pflag parses "30s") and
		// copied into the spec only if given.
		timeout, idleTimeout, queueTimeout time.Duration
		retryBackoff, maxEventAge          time.Duration
		cmdLine                            string
		retries                            int
		secretNames                        []string
		snapshot                           bool
		egress                             bool
		allowHosts                         []string
		filesDir                           string
		kv                                 bool
	)
	cmd := &cobra.Command{
		Use:   "deploy [NAME] (--code PATH --runtime RUNTIME | -f gust.yaml) [flags]",
		Short: "Create a new version of a function and make it live",
		Long: `Upload code as a new immutable version of function NAME and point its live
alias at it. The function is created on its first deploy.

Either give the code and spec with flags, or read them from a manifest with
-f gust.yaml (fields: name, code, runtime, env, memory, timeout, maxBodyBytes,
maxConcurrency, minInstances, idleTimeout, queueTimeout, perInstanceConcurrency,
cmd, protocol, handler, retries, retryBackoff, maxEventAge, triggers, snapshot,
allowedHosts, files, kv; code and files are relative to the manifest's
directory). Flags given with -f override the manifest's fields, and NAME
overrides its name.

A wasm function gets nothing it does not declare: outbound HTTP only to the
hosts of --allow-host (exact names or *.example.com; never IP addresses), a
read-only directory at /files only with --files DIR (uploaded with the
deploy), and a key-value store of its own only with --kv.`,
		Example: `  gust deploy hello --runtime wasm --code hello.wasm --memory 64 --timeout 10s
  gust deploy -f gust.yaml
  gust deploy hello-canary -f gust.yaml --env MODE=canary
  gust deploy rates --code rates.wasm --allow-host api.example.com --files static --kv`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var spec client.Manifest
			if file != "" {
				mf, err := client.LoadManifest(file)
				if err != nil {
					return err
				}
				spec = *mf
			}
			if len(args) == 1 {
				spec.Name = args[0]
			}
			f := cmd.Flags()
			override := func(flag string, set func()) {
				if f.Changed(flag) {
					set()
				}
			}
			override("code", func() { spec.Code = m.Code })
			override("runtime", func() { spec.Runtime = m.Runtime })
			override("memory", func() { spec.MemoryMB = m.MemoryMB })
			override("timeout", func() { spec.Timeout = gust.Duration(timeout) })
			override("max-body-bytes", func() { spec.MaxBodyBytes = m.MaxBodyBytes })
			override("max-concurrency", func() { spec.MaxConcurrency = m.MaxConcurrency })
			override("min-instances", func() { spec.MinInstances = m.MinInstances })
			override("idle-timeout", func() { spec.IdleTimeout = gust.Duration(idleTimeout) })
			override("queue-timeout", func() { spec.QueueTimeout = gust.Duration(queueTimeout) })
			override("per-instance-concurrency", func() { spec.PerInstanceConcurrency = m.PerInstanceConcurrency })
			override("cmd", func() { spec.Cmd = strings.Fields(cmdLine) })
			override("protocol", func() { spec.Protocol = m.Protocol })
			override("handler", func() { spec.Handler = m.Handler })
			override("retries", func() { spec.Retries = &retries })
			override("retry-backoff", func() { spec.RetryBackoff = gust.Duration(retryBackoff) })
			override("max-event-age", func() { spec.MaxEventAge = gust.Duration(maxEventAge) })
			override("snapshot", func() { spec.Snapshot = &snapshot })
			override("secret", func() { spec.Secrets = secretNames })
			override("egress", func() { spec.Egress = egress })
			override("allow-host", func() { spec.AllowedHosts = allowHosts })
			override("files", func() {
				spec.Files = nil
				if filesDir != "" {
					spec.Files = &gust.Files{Dir: filesDir}
				}
			})
			override("kv", func() { spec.KV = kv })
			if len(env) > 0 {
				// Copy, so the manifest's map is not shared, then let each
				// --env win over the manifest's value of the same name.
				merged := make(map[string]string, len(spec.Env)+len(env))
				for k, v := range spec.Env {
					merged[k] = v
				}
				for _, kv := range env {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "" {
						return fmt.Errorf("invalid --env %q: want NAME=VALUE", kv)
					}
					merged[k] = v
				}
				spec.Env = merged
			}

			if spec.Name == "" {
				return fmt.Errorf("no function name: give NAME or set name: in the manifest")
			}
			if spec.Code == "" {
				return fmt.Errorf("no code: pass --code PATH or set code: in the manifest")
			}
			if spec.Runtime == "" {
				if !strings.HasSuffix(spec.Code, ".wasm") {
					return fmt.Errorf("no runtime for %s: pass --runtime wasm, process, python3 or nodejs", spec.Code)
				}
				spec.Runtime = gust.RuntimeWasm
			}
			codeFile, err := os.Open(spec.Code)
			if err != nil {
				return fmt.Errorf("open code: %w", err)
			}
			defer codeFile.Close()
			st, err := codeFile.Stat()
			if err != nil {
				return fmt.Errorf("open code: %w", err)
			}
			var code io.Reader = codeFile
			codeName := spec.Code
			if st.IsDir() {
				// A process function's directory is uploaded as the zip
				// archive the process runtimes unpack, executable bits kept.
				if spec.Runtime == gust.RuntimeWasm {
					return fmt.Errorf("code %s is a directory: the wasm runtime takes a .wasm file (gust build DIR -o FILE.wasm)", spec.Code)
				}
				zipped, err := process.ZipDir(spec.Code)
				if err != nil {
					return err
				}
				code = bytes.NewReader(zipped)
				codeName = filepath.Base(filepath.Clean(spec.Code)) + ".zip"
			}

			var files []byte
			if spec.Files != nil && spec.Files.Dir != "" {
				if files, err = client.TarDir(spec.Files.Dir); err != nil {
					return err
				}
			}

			c, err := a.client()
			if err != nil {
				return err
			}
			v, err := c.DeployDetailed(cmd.Context(), spec.Name, spec.Spec, codeName, code, files)
			if err != nil {
				return err
			}
			if v.IsLive() {
				fmt.Fprintf(cmd.OutOrStdout(), "deployed %s version %d (live)\n", v.Function, v.Number)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "deployed %s version %d (not live: version %d, deployed meanwhile, is)\n", v.Function, v.Number, v.LiveVersion)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "read name, code and spec from this manifest (gust.yaml)")
	f.StringVar(&m.Code, "code", "", "path of the code: a .wasm module, or for process runtimes a .zip, a .tar.gz or a directory (zipped before upload)")
	f.StringVar(&m.Runtime, "runtime", "", "runtime: wasm, process, python3 or nodejs (default wasm for a .wasm file)")
	f.IntVar(&m.MemoryMB, "memory", 0, fmt.Sprintf("memory limit in MB (default %d)", gust.DefaultMemoryMB))
	f.DurationVar(&timeout, "timeout", 0, fmt.Sprintf("time limit of one invocation (default %s)", gust.DefaultTimeout))
	f.StringArrayVar(&env, "env", nil, "environment variable NAME=VALUE (repeatable)")
	f.IntVar(&m.MaxConcurrency, "max-concurrency", 0, fmt.Sprintf("most invocations at once (default %d)", gust.DefaultMaxConcurrency))
	f.IntVar(&m.MinInstances, "min-instances", 0, "instances kept warm even when idle")
	f.DurationVar(&idleTimeout, "idle-timeout", 0, fmt.Sprintf("idle time before an instance is stopped (default %s)", gust.DefaultIdleTimeout))
	f.DurationVar(&queueTimeout, "queue-timeout", 0, fmt.Sprintf("how long a request waits at max concurrency before 429 (default %s)", gust.DefaultQueueTimeout))
	f.IntVar(&m.PerInstanceConcurrency, "per-instance-concurrency", 0, "invocations one instance serves at once (process runtimes; default 1)")
	f.Int64Var(&m.MaxBodyBytes, "max-body-bytes", 0, fmt.Sprintf("largest request body in bytes (default %d)", gust.DefaultMaxBodyBytes))
	f.StringVar(&cmdLine, "cmd", "", "command that starts a process function, split on spaces (default ./bootstrap)")
	f.StringVar(&m.Protocol, "protocol", "", "how gust talks to a process function: http (serves $PORT) or lambda (Runtime API)")
	f.StringVar(&m.Handler, "handler", "", "FILE.FUNCTION of a python3 or nodejs function, e.g. handler.handler")
	f.IntVar(&retries, "retries", gust.DefaultRetries, "retries of a failed async invocation")
	f.DurationVar(&retryBackoff, "retry-backoff", gust.DefaultRetryBackoff, "delay before the first retry of an async invocation; doubles each time")
	f.DurationVar(&maxEventAge, "max-event-age", gust.DefaultMaxEventAge, "oldest an async event may get before it is dead-lettered")
	f.StringArrayVar(&secretNames, "secret", nil, "give the function this secret as an env variable of the same name (repeatable)")
	f.BoolVar(&egress, "egress", false, "let a process function open network connections (it then shares the host's network)")
	f.StringArrayVar(&allowHosts, "allow-host", nil, "let a wasm function send HTTP requests to this host, or *.domain for its subdomains (repeatable)")
	f.StringVar(&filesDir, "files", "", "upload this directory with the code; a wasm function reads it at /files, read-only")
	f.BoolVar(&kv, "kv", false, "give a wasm function a key-value store of its own")
	f.BoolVar(&snapshot, "snapshot", true, "start wasm reactors from a pre-initialized memory snapshot")
	return cmd
}
