package client

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
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

// ParseManifest reads a manifest strictly: an unknown or duplicate field
// is an error naming it, so a typo ("memroy") fails the deploy instead of
// being ignored. Errors are EINVALID. Code is returned as written.
func ParseManifest(data []byte) (*Manifest, error) {
	// Check the shape of durations on the generic form, where a number is
	// still a number and not yet nanoseconds, and before the strict
	// decoder words its own error for 1.5 or true.
	var raw any
	if err := yaml.Unmarshal(data, &raw); err == nil {
		if err := checkDurations(manifestType, raw, ""); err != nil {
			return nil, err
		}
	}
	var m Manifest
	if err := yaml.UnmarshalStrict(data, &m); err != nil {
		return nil, gust.Errorf(gust.EINVALID, "invalid manifest: %s", cleanYAMLError(err))
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

var (
	manifestType = reflect.TypeFor[Manifest]()
	durationType = reflect.TypeFor[gust.Duration]()
)

// checkDurations refuses a bare number wherever the manifest type t holds
// a gust.Duration, at any depth (triggers[0].catchUp, routes[2].jwt.leeway):
// gust.Duration reads a JSON number as nanoseconds, so "maxEventAge: 3600"
// would be 3.6 µs. v is that part of the manifest as generic YAML and
// path its place. It follows the types by reflection, so a Duration field
// added to the spec later is checked without a list to update. A value of
// the wrong shape is left to the strict decoder, which names it.
func checkDurations(t reflect.Type, v any, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		switch v := v.(type) {
		case nil:
			return nil
		case string:
			// "3600" quoted: the same mistake, which time.ParseDuration
			// would only call a missing unit.
			if _, err := strconv.ParseFloat(v, 64); err == nil && v != "0" {
				return gust.Errorf(gust.EINVALID, "invalid manifest: %s: write a duration with its unit, such as \"%ss\", not %q", path, v, v)
			}
			return nil
		case float64:
			n := strconv.FormatFloat(v, 'f', -1, 64)
			return gust.Errorf(gust.EINVALID, "invalid manifest: %s: write a duration with its unit, such as \"%ss\", not %s (a bare number would be %s nanoseconds)", path, n, n, n)
		default:
			return gust.Errorf(gust.EINVALID, "invalid manifest: %s: write a duration with its unit, such as \"30s\", not %v", path, v)
		}
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		return checkStructDurations(t, m, path)
	case reflect.Slice, reflect.Array:
		a, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, e := range a {
			if err := checkDurations(t.Elem(), e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		for k, e := range m {
			if err := checkDurations(t.Elem(), e, joinPath(path, k)); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkStructDurations checks the fields of struct type t present in m.
// Keys match field names as encoding/json matches them (its tag name, or
// the Go name; exact first, then without regard to case), and an
// embedded struct without a name (Manifest's gust.Spec) is inlined.
func checkStructDurations(t reflect.Type, m map[string]any, path string) error {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() && !f.Anonymous || name == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			if err := checkStructDurations(ft, m, path); err != nil {
				return err
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		key, ok := name, false
		if _, ok = m[name]; !ok {
			for k := range m {
				if strings.EqualFold(k, name) {
					key, ok = k, true
					break
				}
			}
		}
		if !ok {
			continue
		}
		if err := checkDurations(f.Type, m[key], joinPath(path, key)); err != nil {
			return err
		}
	}
	return nil
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
