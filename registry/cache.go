package registry

import (
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gustfaas/gust"
)

const (
	fnPrefix    = "fn."
	verPrefix   = "ver."
	allVersions = verPrefix + ">"
)

func fnKey(name string) string         { return fnPrefix + name }
func verKey(name string, n int) string { return verPrefix + name + "." + strconv.Itoa(n) }
func verFilter(name string) string     { return verPrefix + name + ".>" }

// parseKey splits a bucket key into the function name and, for a version
// key, its number. ok is false for keys this package does not write.
func parseKey(key string) (name string, number int, ok bool) {
	if rest, found := strings.CutPrefix(key, fnPrefix); found {
		return rest, 0, rest != ""
	}
	if rest, found := strings.CutPrefix(key, verPrefix); found {
		name, num, found := strings.Cut(rest, ".")
		if !found {
			return "", 0, false
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || name == "" {
			return "", 0, false
		}
		return name, n, true
	}
	return "", 0, false
}

// cache is the in-memory copy of the registry bucket. Every key remembers
// the KV revision it was last set or deleted at, so that a write applied
// here by its writer is not undone when the watch delivers an older event
// later, and the watch delivering the write itself is a no-op.
type cache struct {
	log *slog.Logger

	mu   sync.RWMutex
	revs map[string]uint64 // key -> revision of its last put or delete
	fns  map[string]*gust.Function
	vers map[string]map[int]*gust.Version
}

func newCache(log *slog.Logger) *cache {
	return &cache{
		log:  log,
		revs: map[string]uint64{},
		fns:  map[string]*gust.Function{},
		vers: map[string]map[int]*gust.Version{},
	}
}

// apply records that key was set to value (or deleted, if deleted) at
// revision rev. It returns the function the key belongs to and whether the
// cache changed. The cache keeps the objects it is given: callers must not
// modify them afterwards.
func (c *cache) apply(key string, rev uint64, deleted bool, value []byte) (string, bool) {
	name, n, ok := parseKey(key)
	if !ok {
		return "", false
	}
	var fn *gust.Function
	var ver *gust.Version
	if !deleted {
		var err error
		if n == 0 {
			fn = new(gust.Function)
			err = json.Unmarshal(value, fn)
		} else {
			ver = new(gust.Version)
			err = json.Unmarshal(value, ver)
		}
		if err != nil {
			// A value we cannot read is treated as absent rather than
			// served half-decoded.
			c.log.Error("registry: undecodable value", "key", key, "revision", rev, "err", err)
			deleted = true
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if rev <= c.revs[key] {
		return name, false
	}
	c.revs[key] = rev
	switch {
	case n == 0 && deleted:
		delete(c.fns, name)
	case n == 0:
		c.fns[name] = fn
	case deleted:
		if vs := c.vers[name]; vs != nil {
			delete(vs, n)
			if len(vs) == 0 {
				delete(c.vers, name)
			}
		}
	default:
		vs := c.vers[name]
		if vs == nil {
			vs = map[int]*gust.Version{}
			c.vers[name] = vs
		}
		vs[n] = ver
	}
	return name, true
}

// visible reports whether f is a function readers should see: one whose
// first deploy has finished. A function record exists from the moment its
// first version number is reserved, before that version is live.
func visible(f *gust.Function) bool { return f != nil && f.Live > 0 }

// view returns the cached function itself, not a copy: see ViewVersion.
func (c *cache) view(name string) *gust.Function {
	c.mu.RLock()
	f := c.fns[name]
	c.mu.RUnlock()
	if !visible(f) {
		return nil
	}
	return f
}

// viewVersion returns version n of name, if name is visible and n is one
// of its versions (ok is false if name is not visible). Keys left by a
// deploy that never finished, or by an older function of the same name,
// are not: their numbers are above LatestVersion. The object is the
// cache's own: see ViewVersion.
func (c *cache) viewVersion(name string, n int) (*gust.Version, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	f := c.fns[name]
	if !visible(f) {
		return nil, false
	}
	if n < 1 || n > f.LatestVersion {
		return nil, true
	}
	return c.vers[name][n], true
}

func (c *cache) functions() []*gust.Function {
	c.mu.RLock()
	out := make([]*gust.Function, 0, len(c.fns))
	for _, f := range c.fns {
		if visible(f) {
			out = append(out, cloneFunction(f))
		}
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b *gust.Function) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (c *cache) versions(name string) ([]*gust.Version, bool) {
	c.mu.RLock()
	f := c.fns[name]
	if !visible(f) {
		c.mu.RUnlock()
		return nil, false
	}
	vs := c.vers[name]
	out := make([]*gust.Version, 0, len(vs))
	for n, v := range vs {
		if n <= f.LatestVersion {
			out = append(out, cloneVersion(v))
		}
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b *gust.Version) int { return a.Number - b.Number })
	return out, true
}

// Readers get copies, so nothing they do can change what other readers see.

func cloneFunction(f *gust.Function) *gust.Function {
	c := *f
	c.Aliases = make(map[string]gust.Alias, len(f.Aliases))
	for k, a := range f.Aliases {
		a.Targets = slices.Clone(a.Targets)
		c.Aliases[k] = a
	}
	return &c
}

func cloneVersion(v *gust.Version) *gust.Version {
	c := *v
	c.Spec.Env = maps.Clone(v.Spec.Env)
	return &c
}
