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
	"time"

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

// codeStoreTimeout bounds one upload of code to the object store.
const codeStoreTimeout = 2 * time.Minute

// putBytes uploads code under hexSum. Without a deadline on its context
// the object store gives each chunk's ack nats.go's default 5 s, which a
// replicated store on a busy machine can miss; a deadline makes the acks
// wait for it instead.
func (r *Registry) putBytes(ctx context.Context, hexSum string, code []byte) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, codeStoreTimeout)
		defer cancel()
	}
	_, err := r.obs.PutBytes(ctx, hexSum, code)
	return err
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
		if r.readBack(ctx, hexSum) == nil {
			return nil
		}
		// The description says intact but the chunks do not: a copy left
		// by an earlier upload that failed half way. Replace it.
	case err != nil && !errors.Is(err, jetstream.ErrObjectNotFound):
		return fmt.Errorf("look up code sha256:%s: %w", hexSum, err)
	}
	// A fresh replicated object store (a cluster that just formed) has
	// been seen to answer the first read-back of an upload with a digest
	// mismatch and the next upload intact; so a bad copy is removed and the
	// upload tried again, a few times, before the deploy fails.
	for attempt := 1; ; attempt++ {
		if err := r.putBytes(ctx, hexSum, code); err != nil {
			r.discardCode(hexSum)
			return fmt.Errorf("store code sha256:%s: %w", hexSum, err)
		}
		err := r.readBack(ctx, hexSum)
		if err == nil {
			return nil
		}
		r.discardCode(hexSum)
		if attempt == 3 || ctx.Err() != nil {
			return fmt.Errorf("store code sha256:%s: the stored copy does not read back intact after %d uploads: %w", hexSum, attempt, err)
		}
		r.log.Warn("stored code did not read back intact; uploading again", "sha256", hexSum, "attempt", attempt, "err", err)
	}
}

// readBack reads a stored object in full; the object store checks what it
// read against the recorded sha256. On a replicated store under load, an
// upload whose acknowledgement timed out can leave an object whose
// description is intact and whose chunks are not; every later read of it
// would fail. A deploy is rare enough to pay one read to never leave such
// an object behind.
func (r *Registry) readBack(ctx context.Context, hexSum string) error {
	_, err := r.obs.GetBytes(ctx, hexSum)
	return err
}

// discardCode removes what a failed upload may have left, so the next
// deploy of the same code uploads it again instead of trusting it. It runs
// on its own deadline: the caller's may be what just expired.
func (r *Registry) discardCode(hexSum string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.obs.Delete(ctx, hexSum); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		r.log.Warn("could not remove a code object left by a failed upload", "sha256", hexSum, "err", err)
	}
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
		var v gust.Version
		if err := json.Unmarshal(e.Value(), &v); err != nil {
			continue
		}
		for _, d := range artifacts(&v) {
			if h, ok := digestHex(d); ok {
				refs[h] = true
			}
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

// artifacts returns the digests of the objects a version uses: its code
// and its files archive.
func artifacts(v *gust.Version) []string {
	ds := []string{v.CodeDigest}
	if v.Spec.Files != nil && v.Spec.Files.Digest != "" {
		ds = append(ds, v.Spec.Files.Digest)
	}
	return ds
}

// PutArchive stores a files archive (see gust.Files) beside the code,
// content-addressed like it, and returns its digest. It is removed with
// the last version that uses it. Errors: EINVALID (empty or too large).
func (r *Registry) PutArchive(ctx context.Context, archive []byte) (string, error) {
	if len(archive) == 0 {
		return "", gust.Errorf(gust.EINVALID, "files archive is empty")
	}
	if int64(len(archive)) > r.maxCode {
		return "", gust.Errorf(gust.EINVALID, "files archive is %d bytes, over the limit of %d", len(archive), r.maxCode)
	}
	sum := sha256.Sum256(archive)
	h := hex.EncodeToString(sum[:])
	if err := r.putCode(ctx, h, archive); err != nil {
		return "", fmt.Errorf("store files archive: %w", err)
	}
	return "sha256:" + h, nil
}

// DiscardArchive removes a files archive that no version uses: what a
// deploy stored before it failed. An archive some version refers to is
// kept. It runs on its own deadline, since the caller's may be what made
// the deploy fail.
func (r *Registry) DiscardArchive(ctx context.Context, digest string) error {
	h, ok := digestHex(digest)
	if !ok {
		return gust.Errorf(gust.EINVALID, "invalid archive digest %q: want sha256:<64 lowercase hex digits>", digest)
	}
	return r.collectOwn(ctx, h)
}

// collectOwn removes object h unless a version refers to it, on a deadline
// of its own that keeps the caller's values (for logs) but not its
// cancellation.
func (r *Registry) collectOwn(ctx context.Context, h string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := r.collectCode(ctx, map[string]bool{h: true}); err != nil {
		return fmt.Errorf("remove unused object sha256:%s: %w", h, err)
	}
	return nil
}

// archiveExists checks that a files archive a spec names is stored.
// Errors: EINVALID.
func (r *Registry) archiveExists(ctx context.Context, digest string) error {
	h, ok := digestHex(digest)
	if !ok {
		return gust.Errorf(gust.EINVALID, "files: no archive uploaded (digest %q)", digest)
	}
	info, err := r.obs.GetInfo(ctx, h)
	if errors.Is(err, jetstream.ErrObjectNotFound) || err == nil && info.Deleted {
		return gust.Errorf(gust.EINVALID, "files: no archive with digest %s: upload the directory with the deploy", digest)
	}
	if err != nil {
		return fmt.Errorf("look up files archive %s: %w", digest, err)
	}
	return nil
}
