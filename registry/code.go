package registry

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/gustfaas/gust"
	"github.com/nats-io/nats.go/jetstream"
)

// digestHex returns the hex part of "sha256:<hex>", if d is one.
func digestHex(d string) (string, bool) {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != sha256.Size*2 {
		return "", false
	}
	if _, err := hex.DecodeString(h); err != nil || strings.ToLower(h) != h {
		return "", false
	}
	return h, true
}

// natsDigest is how the object store records an object's sha256, so an
// existing object can be checked against code without reading it back.
func natsDigest(hexSum string) string {
	sum, _ := hex.DecodeString(hexSum)
	return "SHA-256=" + base64.URLEncoding.EncodeToString(sum)
}

// putCode stores code under its digest unless an intact copy is there.
// Deploys of the same code on this node take turns, so 20 concurrent
// deploys of one artifact upload it once, not 20 times.
func (r *Registry) putCode(ctx context.Context, hexSum string, code []byte) error {
	unlock := r.codeMu.lock(hexSum)
	defer unlock()
	info, err := r.obs.GetInfo(ctx, hexSum)
	switch {
	case err == nil && !info.Deleted && info.Digest == natsDigest(hexSum):
		return nil
	case err != nil && !errors.Is(err, jetstream.ErrObjectNotFound):
		return fmt.Errorf("look up code sha256:%s: %w", hexSum, err)
	}
	if _, err := r.obs.PutBytes(ctx, hexSum, code); err != nil {
		return fmt.Errorf("store code sha256:%s: %w", hexSum, err)
	}
	return nil
}

// Code returns the artifact with the given digest. Errors: ENOTFOUND,
// EINVALID for a digest that is not "sha256:<64 lowercase hex digits>".
func (r *Registry) Code(ctx context.Context, digest string) ([]byte, error) {
	h, ok := digestHex(digest)
	if !ok {
		return nil, gust.Errorf(gust.EINVALID, "invalid code digest %q: want sha256:<64 lowercase hex digits>", digest)
	}
	// GetBytes checks the object store's own sha256 of what it read.
	b, err := r.obs.GetBytes(ctx, h)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, gust.Errorf(gust.ENOTFOUND, "no code with digest %s", digest)
	}
	if err != nil {
		return nil, fmt.Errorf("read code %s: %w", digest, err)
	}
	return b, nil
}

// collectCode removes the objects in candidates that no version of any
// function references. A deploy of the same code may commit between the
// check and the removal; so the references are checked again afterwards and
// whatever turned out to be needed is put back from the copy read before.
func (r *Registry) collectCode(ctx context.Context, candidates map[string]bool) error {
	if len(candidates) == 0 {
		return nil
	}
	refs, err := r.codeRefs(ctx)
	if err != nil {
		return err
	}
	removed := map[string][]byte{}
	for h := range candidates {
		if refs[h] {
			continue
		}
		unlock := r.codeMu.lock(h)
		b, err := r.obs.GetBytes(ctx, h)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			unlock()
			continue
		}
		if err == nil {
			err = r.obs.Delete(ctx, h)
		}
		unlock()
		if err != nil {
			return fmt.Errorf("remove code sha256:%s: %w", h, err)
		}
		removed[h] = b
	}
	if len(removed) == 0 {
		return nil
	}
	refs, err = r.codeRefs(ctx)
	if err != nil {
		return err
	}
	for h, b := range removed {
		if !refs[h] {
			continue
		}
		r.log.Info("registry: code became used again while being removed; restoring", "digest", "sha256:"+h)
		if err := r.putCode(ctx, h, b); err != nil {
			return err
		}
	}
	return nil
}

// codeRefs returns the hex digests every stored version references, read
// from JetStream so a deploy just made on another node counts.
func (r *Registry) codeRefs(ctx context.Context) (map[string]bool, error) {
	entries, err := r.scan(ctx, allVersions)
	if err != nil {
		return nil, err
	}
	refs := make(map[string]bool, len(entries))
	for _, e := range entries {
		var v struct {
			CodeDigest string `json:"codeDigest"`
		}
		if err := json.Unmarshal(e.Value(), &v); err != nil {
			continue
		}
		if h, ok := digestHex(v.CodeDigest); ok {
			refs[h] = true
		}
	}
	return refs, nil
}

// keyedMutex is a mutex per key, created on demand and dropped when unused.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()

	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
