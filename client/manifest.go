package client

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/gustfaas/gust"
)

// Manifest is a gust.yaml: the function's name, the path of its code
// artifact, and the fields of its Spec under their JSON names (runtime,
// env, memory, timeout, maxBodyBytes, maxConcurrency, minInstances,
// idleTimeout, queueTimeout, perInstanceConcurrency, and the wasm
// capabilities allowedHosts, files and kv).
//
//	name: hello
//	code: hello.wasm
//	runtime: wasm
//	memory: 64
//	timeout: 10s
//	allowedHosts: [api.example.com, "*.cdn.example.com"]
//	files: static      # a directory, relative to the manifest; read-only at /files
//	kv: true
type Manifest struct {
	Name string `json:"name,omitempty"`
	// Code is the artifact's path. In a file read by LoadManifest it is
	// resolved relative to the manifest's directory.
	Code string `json:"code,omitempty"`
	gust.Spec
}

// durationFields are the Spec fields a bare YAML number would silently turn
// into nanoseconds ("timeout: 30" would be 30ns); ParseManifest rejects
// numbers there.
var durationFields = []string{"timeout", "idleTimeout", "queueTimeout"}

// ParseManifest reads a manifest strictly: an unknown or duplicate field
// is an error naming it, so a typo ("memroy") fails the deploy instead of
// being ignored. Errors are EINVALID. Code is returned as written.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := yaml.UnmarshalStrict(data, &m); err != nil {
		return nil, gust.Errorf(gust.EINVALID, "invalid manifest: %s", cleanYAMLError(err))
	}
	// Check the shape of durations on the generic form, where a number is
	// still a number and not yet nanoseconds.
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err == nil {
		for _, f := range durationFields {
			if v, ok := raw[f]; ok {
				if _, isString := v.(string); !isString && v != nil {
					return nil, gust.Errorf(gust.EINVALID, "invalid manifest: %s: write a duration with its unit, such as \"30s\", not %v", f, v)
				}
			}
		}
	}
	if m.Name != "" {
		if err := gust.ValidateName(m.Name); err != nil {
			return nil, gust.Errorf(gust.EINVALID, "invalid manifest: %s", gust.ErrorMessage(err))
		}
	}
	return &m, nil
}

// LoadManifest reads the manifest at path and resolves its code path
// relative to the manifest's directory, so `gust deploy -f dir/gust.yaml`
// works from anywhere.
func LoadManifest(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, gust.WrapError(gust.EINVALID, err, "read manifest")
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m.Code != "" && !filepath.IsAbs(m.Code) {
		m.Code = filepath.Join(filepath.Dir(path), m.Code)
	}
	if m.Files != nil && m.Files.Dir != "" && !filepath.IsAbs(m.Files.Dir) {
		f := *m.Files
		f.Dir = filepath.Join(filepath.Dir(path), f.Dir)
		m.Files = &f
	}
	return m, nil
}

// cleanYAMLError drops the layers that sigs.k8s.io/yaml and encoding/json
// put around what the user needs to read, such as `unknown field "memroy"`,
// and names fields as they appear in the manifest.
func cleanYAMLError(err error) string {
	msg := err.Error()
	for _, p := range []string{"error converting YAML to JSON: ", "error unmarshaling JSON: ", "while decoding JSON: ", "json: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return strings.NewReplacer(
		"Go struct field Manifest.Spec.", "field ",
		"Go struct field Manifest.", "field ",
		"Go value of type client.Manifest", "a manifest (want a mapping of fields)",
		"\n", " ",
	).Replace(msg)
}
