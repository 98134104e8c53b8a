package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// docSep splits a multi-document YAML file; sigs.k8s.io/yaml reads one
// document at a time.
var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// TestKubernetesYAML unmarshals every document of every file under
// kubernetes/ and checks that each manifest names its API version, kind and
// name, and that the NATS values set what the README promises.
func TestKubernetesYAML(t *testing.T) {
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no YAML under kubernetes/: %v", err)
	}
	kinds := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSep.Split(string(b), -1) {
			var m map[string]any
			if err := yaml.UnmarshalStrict([]byte(doc), &m); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			if m == nil {
				continue // comments only
			}
			if filepath.Base(f) == "nats-values.yaml" {
				checkNATSValues(t, m)
				continue
			}
			meta, _ := m["metadata"].(map[string]any)
			if m["apiVersion"] == nil || m["kind"] == nil || meta["name"] == nil {
				t.Fatalf("%s document %d lacks apiVersion, kind or metadata.name", f, i)
			}
			kinds[m["kind"].(string)] = true
			if m["kind"] == "StatefulSet" {
				checkStatefulSet(t, m)
			}
		}
	}
	for _, k := range []string{"Secret", "Service", "StatefulSet", "PodDisruptionBudget"} {
		if !kinds[k] {
			t.Errorf("no %s among the manifests", k)
		}
	}
}

func checkNATSValues(t *testing.T, m map[string]any) {
	t.Helper()
	want := map[string]any{
		"config.cluster.enabled":   true,
		"config.cluster.replicas":  float64(3),
		"config.jetstream.enabled": true,
	}
	for path, v := range want {
		if got := lookup(m, path); got != v {
			t.Errorf("nats-values.yaml %s = %v, want %v", path, got, v)
		}
	}
}

func checkStatefulSet(t *testing.T, m map[string]any) {
	t.Helper()
	if r := lookup(m, "spec.replicas"); r != float64(3) {
		t.Errorf("gust replicas = %v, want 3", r)
	}
	containers, _ := lookup(m, "spec.template.spec.containers").([]any)
	if len(containers) != 1 {
		t.Fatalf("want one container, have %d", len(containers))
	}
	c := containers[0].(map[string]any)
	var args []string
	for _, a := range c["args"].([]any) {
		args = append(args, a.(string))
	}
	joined := strings.Join(args, " ")
	for _, f := range []string{"--nats=", "--replicas=3", "--node-id=", "--advertise=", "--data="} {
		if !strings.Contains(joined, f) {
			t.Errorf("gust args lack %s: %v", f, args)
		}
	}
	env, _ := c["env"].([]any)
	found := false
	for _, e := range env {
		if e.(map[string]any)["name"] == "GUST_MASTER_KEY" && lookup(e.(map[string]any), "valueFrom.secretKeyRef.name") == "gust-master-key" {
			found = true
		}
	}
	if !found {
		t.Error("GUST_MASTER_KEY does not come from the gust-master-key Secret")
	}
}

func lookup(m map[string]any, path string) any {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// TestSystemdUnit checks the unit with systemd-analyze verify where it is
// installed, with ExecStart pointed at a stand-in executable (verify
// insists that it exists).
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("systemd/gust.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Delegate=yes", "CAP_SYS_ADMIN", "StateDirectory=gust", "--nats ${GUST_NATS}"} {
		if !bytes.Contains(unit, []byte(want)) {
			t.Errorf("gust.service lacks %q", want)
		}
	}
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "gust")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit = bytes.ReplaceAll(unit, []byte("/usr/local/bin/gust"), []byte(exe))
	if err := os.WriteFile(filepath.Join(dir, "gust.service"), unit, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sa, "verify", "./gust.service")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	if len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify warns:\n%s", out)
	}
}
