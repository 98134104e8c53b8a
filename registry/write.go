package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/gustfaas/gust"
	"github.com/nats-io/nats.go/jetstream"
)

// maxAttempts bounds the retries of a compare-and-set that keeps losing to
// concurrent writers of the same function. Each attempt lets at least one
// writer through, so it is also roughly how many concurrent writers of one
// function are served before some get ECONFLICT.
const maxAttempts = 100

// Deploy stores code, creates the next version of name and makes it live.
//
// It takes three steps, each safe to interrupt: reserve the number by
// raising LatestVersion on the function record (a compare-and-set, so two
// deploys never get the same number), write the version, then point live at
// it (another compare-and-set). A deploy that dies between steps leaves a
// gap in the numbers or a version that is not live, never a live alias
// pointing at nothing. A deploy whose last step finds live already on a
// newer version (a concurrent deploy that reserved after it finished
// before it) leaves live there: its version is stored but not live.
//
// Errors: EINVALID, ECONFLICT.
func (r *Registry) Deploy(ctx context.Context, name string, spec gust.Spec, shape string, code []byte) (*gust.Version, error) {
	if err := gust.ValidateName(name); err != nil {
		return nil, err
	}
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if len(code) == 0 {
		return nil, gust.Errorf(gust.EINVALID, "code for %q is empty", name)
	}
	if int64(len(code)) > r.maxCode {
		return nil, gust.Errorf(gust.EINVALID, "code for %q is %d bytes, over the limit of %d", name, len(code), r.maxCode)
	}
	if f := spec.Files; f != nil {
		if err := r.archiveExists(ctx, f.Digest); err != nil {
			return nil, err
		}
	}
	sum := sha256.Sum256(code)
	hexSum := hex.EncodeToString(sum[:])
	if err := r.putCode(ctx, hexSum, code); err != nil {
		return nil, fmt.Errorf("deploy %s: %w", name, err)
	}
	// From here a failure leaves code that no version may use: remove it
	// unless another version does (collectCode checks).
	committed := false
	defer func() {
		if committed {
			return
		}
		if err := r.collectOwn(ctx, hexSum); err != nil {
			r.log.Warn("registry: remove the code of a failed deploy", "function", name, "sha256", hexSum, "err", err)
		}
	}()

	n, createdAt, err := r.reserve(ctx, name)
	if err != nil {
		return nil, err
	}

	v := &gust.Version{
		Function:   name,
		Number:     n,
		Spec:       spec,
		CodeDigest: "sha256:" + hexSum,
		CodeSize:   int64(len(code)),
		Shape:      shape,
		CreatedAt:  time.Now().UTC(),
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("deploy %s: encode version: %w", name, err)
	}
	// A plain put is safe: the reservation made n ours. A key already there
	// can only be left over from a deploy of a deleted function of the same
	// name that never finished.
	key := verKey(name, n)
	rev, err := r.kv.Put(ctx, key, data)
	if err != nil {
		return nil, fmt.Errorf("deploy %s: store version %d: %w", name, n, err)
	}
	r.applyPut(key, rev, data)

	live, err := r.makeLive(ctx, name, n, createdAt)
	if err != nil {
		if c := gust.ErrorCode(err); c == gust.ENOTFOUND || c == gust.ECONFLICT {
			// Deleted under us (or lost every race): the version must not
			// linger under a name that no longer has it.
			if perr := r.kv.Purge(ctx, key); perr != nil {
				r.log.Warn("registry: remove version of a failed deploy", "function", name, "version", n, "err", perr)
			} else {
				r.applyDelete(key, rev)
			}
		}
		if gust.ErrorCode(err) == gust.ENOTFOUND {
			return nil, gust.WrapError(gust.ECONFLICT, err, "function %q was deleted while version %d was being deployed", name, n)
		}
		return nil, err
	}

	committed = true
	// A concurrent Delete of another function using the same code may have
	// removed the object after putCode saw it. Delete re-puts what it finds
	// referenced after removing; this covers the other order.
	if err := r.putCode(ctx, hexSum, code); err != nil {
		return nil, fmt.Errorf("deploy %s: %w", name, err)
	}
	r.log.Info("deployed", "function", name, "version", n, "live", live, "digest", v.CodeDigest, "size", v.CodeSize, "runtime", spec.Runtime)
	return cloneVersion(v), nil
}

// errNewerLive stops makeLive's update without writing.
var errNewerLive = errors.New("a newer version is live")

// makeLive points live wholly at version n of the incarnation of name
// created at createdAt, unless live already routes to a newer version:
// of concurrent deploys the newest wins, whichever finishes last. It
// reports whether live now routes to n. A rollback moves live back on
// purpose and is not a deploy, so the next deploy moves it forward again.
// Errors: ENOTFOUND, ECONFLICT.
func (r *Registry) makeLive(ctx context.Context, name string, n int, createdAt time.Time) (bool, error) {
	_, err := r.update(ctx, name, func(f *gust.Function) error {
		if !f.CreatedAt.Equal(createdAt) {
			return gust.Errorf(gust.ECONFLICT, "function %q was deleted while version %d was being deployed", name, n)
		}
		newest := f.Live
		for _, t := range f.Aliases[gust.AliasLive].Targets {
			newest = max(newest, t.Version)
		}
		if newest > n {
			return errNewerLive
		}
		f.Live = n
		f.Aliases[gust.AliasLive] = gust.Alias{Name: gust.AliasLive, Targets: []gust.AliasTarget{{Version: n, Weight: 100}}}
		return nil
	})
	if errors.Is(err, errNewerLive) {
		return false, nil
	}
	return err == nil, err
}

// reserve raises the function's LatestVersion by one, creating the function
// record if there is none, and returns the new number and the record's
// CreatedAt, which identifies this incarnation of the name.
func (r *Registry) reserve(ctx context.Context, name string) (int, time.Time, error) {
	for attempt := range maxAttempts {
		if err := backoff(ctx, attempt); err != nil {
			return 0, time.Time{}, err
		}
		f, rev, err := r.getFunction(ctx, name)
		if err != nil {
			return 0, time.Time{}, err
		}
		now := time.Now().UTC()
		if f == nil {
			f = &gust.Function{Name: name, Aliases: map[string]gust.Alias{}, CreatedAt: now}
		}
		f.LatestVersion++
		f.UpdatedAt = now
		data, err := json.Marshal(f)
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("deploy %s: encode function: %w", name, err)
		}
		var newRev uint64
		if rev == 0 {
			newRev, err = r.kv.Create(ctx, fnKey(name), data)
		} else {
			newRev, err = r.kv.Update(ctx, fnKey(name), data, rev)
		}
		if isConflict(err) {
			continue
		}
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("deploy %s: reserve version: %w", name, err)
		}
		r.applyPut(fnKey(name), newRev, data)
		return f.LatestVersion, f.CreatedAt, nil
	}
	return 0, time.Time{}, gust.Errorf(gust.ECONFLICT, "too many concurrent changes to function %q; retry", name)
}

// getFunction reads a function record from JetStream, not the cache: a
// compare-and-set needs the latest revision. A missing function is nil
// with revision 0.
func (r *Registry) getFunction(ctx context.Context, name string) (*gust.Function, uint64, error) {
	e, err := r.kv.Get(ctx, fnKey(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read function %s: %w", name, err)
	}
	f := new(gust.Function)
	if err := json.Unmarshal(e.Value(), f); err != nil {
		return nil, 0, fmt.Errorf("decode function %s: %w", name, err)
	}
	if f.Aliases == nil {
		f.Aliases = map[string]gust.Alias{}
	}
	return f, e.Revision(), nil
}

// update applies mutate to the current record of name and writes it back
// if nobody else wrote in between, retrying otherwise. mutate may run more
// than once and must return an error to abort. Errors: ENOTFOUND,
// ECONFLICT, and whatever mutate returns.
func (r *Registry) update(ctx context.Context, name string, mutate func(f *gust.Function) error) (*gust.Function, error) {
	for attempt := range maxAttempts {
		if err := backoff(ctx, attempt); err != nil {
			return nil, err
		}
		f, rev, err := r.getFunction(ctx, name)
		if err != nil {
			return nil, err
		}
		if f == nil {
			return nil, notFound(name)
		}
		if err := mutate(f); err != nil {
			return nil, err
		}
		f.UpdatedAt = time.Now().UTC()
		data, err := json.Marshal(f)
		if err != nil {
			return nil, fmt.Errorf("update %s: encode function: %w", name, err)
		}
		newRev, err := r.kv.Update(ctx, fnKey(name), data, rev)
		if isConflict(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("update %s: %w", name, err)
		}
		r.applyPut(fnKey(name), newRev, data)
		return cloneFunction(f), nil
	}
	return nil, gust.Errorf(gust.ECONFLICT, "too many concurrent changes to function %q; retry", name)
}

// backoff sleeps before a retry, longer and randomized as attempts grow, so
// writers that keep colliding spread out instead of colliding again.
func backoff(ctx context.Context, attempt int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if attempt == 0 {
		return nil
	}
	limit := time.Duration(min(attempt, 20)) * time.Millisecond
	t := time.NewTimer(rand.N(limit) + time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// versionExists checks JetStream, not the cache, because it guards a write.
func (r *Registry) versionExists(ctx context.Context, name string, n int) error {
	if n < 1 {
		return gust.Errorf(gust.ENOTFOUND, "function %q has no version %d", name, n)
	}
	_, err := r.kv.Get(ctx, verKey(name, n))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return gust.Errorf(gust.ENOTFOUND, "function %q has no version %d", name, n)
	}
	if err != nil {
		return fmt.Errorf("read version %d of %s: %w", n, name, err)
	}
	return nil
}

// Rollback points live wholly at version number. Errors: ENOTFOUND.
func (r *Registry) Rollback(ctx context.Context, name string, number int) (*gust.Function, error) {
	if err := r.versionExists(ctx, name, number); err != nil {
		return nil, err
	}
	f, err := r.update(ctx, name, func(f *gust.Function) error {
		if number > f.LatestVersion {
			return gust.Errorf(gust.ENOTFOUND, "function %q has no version %d", name, number)
		}
		f.Live = number
		f.Aliases[gust.AliasLive] = gust.Alias{Name: gust.AliasLive, Targets: []gust.AliasTarget{{Version: number, Weight: 100}}}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.log.Info("rolled back", "function", name, "version", number)
	return f, nil
}

// SetAlias creates or replaces an alias. Setting live also moves
// Function.Live to the target with the most traffic. An alias named with
// digits only is refused: a reference would take it for a version.
// Errors: ENOTFOUND, EINVALID.
func (r *Registry) SetAlias(ctx context.Context, name string, alias gust.Alias) (*gust.Function, error) {
	if err := alias.Validate(); err != nil {
		return nil, err
	}
	if digitsOnly(alias.Name) {
		return nil, gust.Errorf(gust.EINVALID, "invalid alias name %q: a name of digits only reads as a version number (NAME@%s is version %s); put a letter in it", alias.Name, alias.Name, alias.Name)
	}
	for _, t := range alias.Targets {
		if err := r.versionExists(ctx, name, t.Version); err != nil {
			return nil, err
		}
	}
	alias.Targets = append([]gust.AliasTarget(nil), alias.Targets...)
	f, err := r.update(ctx, name, func(f *gust.Function) error {
		for _, t := range alias.Targets {
			if t.Version > f.LatestVersion {
				return gust.Errorf(gust.ENOTFOUND, "function %q has no version %d", name, t.Version)
			}
		}
		f.Aliases[alias.Name] = alias
		if alias.Name == gust.AliasLive {
			f.Live = heaviest(alias)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.log.Info("alias set", "function", name, "alias", alias.Name, "targets", alias.Targets)
	return f, nil
}

// digitsOnly reports whether name would be taken for a version number
// where a reference names a version or an alias (NAME@REF).
func digitsOnly(name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return false
		}
	}
	return name != ""
}

// heaviest returns the version that gets the most traffic from a valid
// alias; on a tie, the first listed.
func heaviest(a gust.Alias) int {
	best := a.Targets[0]
	for _, t := range a.Targets[1:] {
		if t.Weight > best.Weight {
			best = t
		}
	}
	return best.Version
}

// DeleteAlias removes an alias other than live. Errors: ENOTFOUND, EINVALID.
func (r *Registry) DeleteAlias(ctx context.Context, name, alias string) (*gust.Function, error) {
	if alias == gust.AliasLive {
		return nil, gust.Errorf(gust.EINVALID, "the %q alias cannot be deleted; roll back or set it instead", gust.AliasLive)
	}
	f, err := r.update(ctx, name, func(f *gust.Function) error {
		if _, ok := f.Aliases[alias]; !ok {
			return gust.Errorf(gust.ENOTFOUND, "function %q has no alias %q", name, alias)
		}
		delete(f.Aliases, alias)
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.log.Info("alias deleted", "function", name, "alias", alias)
	return f, nil
}

// Delete removes a function, its versions and the code no other version
// uses. Errors: ENOTFOUND.
func (r *Registry) Delete(ctx context.Context, name string) error {
	var fnRev uint64
	for attempt := 0; ; attempt++ {
		if attempt == maxAttempts {
			return gust.Errorf(gust.ECONFLICT, "too many concurrent changes to function %q; retry", name)
		}
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
		f, rev, err := r.getFunction(ctx, name)
		if err != nil {
			return err
		}
		if f == nil {
			return notFound(name)
		}
		err = r.kv.Purge(ctx, fnKey(name), jetstream.LastRevision(rev))
		if isConflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("delete %s: %w", name, err)
		}
		r.applyDelete(fnKey(name), rev)
		fnRev = rev
		break
	}

	// The function is gone for readers now; what follows is cleanup.
	// Version keys written after the record's last revision belong to a
	// deploy still in flight (which removes its own when it fails to make
	// it live) or to a new function of the same name: leave them.
	entries, err := r.scan(ctx, verFilter(name))
	if err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	orphans := map[string]bool{} // hex digests the deleted versions used
	for _, e := range entries {
		if e.Revision() > fnRev {
			continue
		}
		var v gust.Version
		if err := json.Unmarshal(e.Value(), &v); err == nil {
			for _, d := range artifacts(&v) {
				if h, ok := digestHex(d); ok {
					orphans[h] = true
				}
			}
		}
		if err := r.kv.Purge(ctx, e.Key()); err != nil {
			return fmt.Errorf("delete %s: remove %s: %w", name, e.Key(), err)
		}
		r.applyDelete(e.Key(), e.Revision())
	}
	if err := r.collectCode(ctx, orphans); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	r.log.Info("deleted", "function", name, "versions", len(entries))
	return nil
}
