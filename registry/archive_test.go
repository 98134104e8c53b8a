package registry

import (
	"testing"

	"github.com/gustfaas/gust"
)

// A files archive is stored like code: once, by digest, kept while a
// version uses it, removed with the last one.
func TestFilesArchive(t *testing.T) {
	r, _ := setup(t, Config{})
	ctx := testCtx(t)
	archive := []byte("a tar archive, as far as the registry cares")
	digest, err := r.PutArchive(ctx, archive)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := r.PutArchive(ctx, archive); err != nil || again != digest {
		t.Fatalf("second put: %s %v, want %s", again, err, digest)
	}
	_, err = r.PutArchive(ctx, nil)
	wantCode(t, err, gust.EINVALID)

	spec := gust.Spec{Files: &gust.Files{Digest: digest, Size: int64(len(archive))}}
	for _, name := range []string{"one", "two"} {
		if _, err := r.Deploy(ctx, name, spec, "reactor", []byte("code of "+name)); err != nil {
			t.Fatal(err)
		}
	}
	missing := gust.Spec{Files: &gust.Files{Digest: "sha256:" + digest[len("sha256:"):len(digest)-1] + "0"}}
	if missing.Files.Digest == digest {
		missing.Files.Digest = "sha256:" + digest[len("sha256:"):len(digest)-1] + "1"
	}
	_, err = r.Deploy(ctx, "three", missing, "reactor", []byte("x"))
	wantCode(t, err, gust.EINVALID)

	if err := r.Delete(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	if b, err := r.Code(ctx, digest); err != nil || string(b) != string(archive) {
		t.Fatalf("archive gone while two uses it: %v", err)
	}
	if err := r.Delete(ctx, "two"); err != nil {
		t.Fatal(err)
	}
	_, err = r.Code(ctx, digest)
	wantCode(t, err, gust.ENOTFOUND)
}

// A deploy that fails after storing its code leaves no object behind,
// unless a version already uses the same code; DiscardArchive removes an
// archive no version uses and keeps one that a version uses.
func TestFailedDeployStoresNothing(t *testing.T) {
	r, _ := setup(t, Config{})
	ctx := testCtx(t)
	// A function record that does not decode makes the deploy fail after
	// the code is stored (at the version's reservation).
	if _, err := r.kv.Put(ctx, fnKey("broken"), []byte("not a function record")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Deploy(ctx, "broken", gust.Spec{}, "reactor", []byte("code of broken")); err == nil {
		t.Fatal("deploy over a broken record succeeded")
	}
	if n := countObjects(t, r); n != 0 {
		t.Fatalf("%d objects left by a failed deploy, want 0", n)
	}

	shared := []byte("code two functions use")
	if _, err := r.Deploy(ctx, "ok", gust.Spec{}, "reactor", shared); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Deploy(ctx, "broken", gust.Spec{}, "reactor", shared); err == nil {
		t.Fatal("deploy over a broken record succeeded")
	}
	if b, err := r.Code(ctx, digestOf(shared)); err != nil || string(b) != string(shared) {
		t.Fatalf("code a live version uses was removed by another's failed deploy: %v", err)
	}

	unused, err := r.PutArchive(ctx, []byte("an archive whose deploy failed"))
	if err != nil {
		t.Fatal(err)
	}
	used, err := r.PutArchive(ctx, []byte("an archive a version uses"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Deploy(ctx, "files", gust.Spec{Files: &gust.Files{Digest: used}}, "reactor", []byte("code of files")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{unused, used} {
		if err := r.DiscardArchive(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	_, err = r.Code(ctx, unused)
	wantCode(t, err, gust.ENOTFOUND)
	if _, err := r.Code(ctx, used); err != nil {
		t.Fatalf("archive a version uses was discarded: %v", err)
	}
	wantCode(t, r.DiscardArchive(ctx, "sha256:nothex"), gust.EINVALID)
}
