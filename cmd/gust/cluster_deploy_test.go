package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDeployFilesUseRealFlags keeps deploy/ in step with `gust serve`: every
// flag the systemd unit and the Kubernetes manifests pass must be one that
// serve takes, so renaming a flag breaks this test and not a production
// start.
func TestDeployFilesUseRealFlags(t *testing.T) {
	flags := newServeCmd().Flags()
	flagRE := regexp.MustCompile(`(?m)(?:^|[\s"'\[])--([a-z][a-z0-9-]*)`)
	for _, f := range []string{"../../deploy/systemd/gust.service", "../../deploy/kubernetes/gust.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var text []string
		for _, line := range strings.Split(string(b), "\n") {
			// Comments name commands of other tools (helm, kubectl).
			if !strings.HasPrefix(strings.TrimSpace(line), "#") {
				text = append(text, line)
			}
		}
		seen := 0
		for _, m := range flagRE.FindAllStringSubmatch(strings.Join(text, "\n"), -1) {
			seen++
			if flags.Lookup(m[1]) == nil {
				t.Errorf("%s passes --%s, which gust serve does not take", f, m[1])
			}
		}
		if seen < 4 {
			t.Errorf("%s: found only %d flags; is the pattern still right?", f, seen)
		}
	}
}
