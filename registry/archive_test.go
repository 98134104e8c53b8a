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
