package lean

import (
	"os/exec"
	"strings"
	"testing"
)

// The point of this package is to keep net/http out of a guest.
func TestNoNetHTTP(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "net/http" {
			t.Fatal("package lean depends on net/http")
		}
	}
}

func TestText(t *testing.T) {
	r := Text(404, "no")
	if r.Status != 404 || string(r.Body) != "no" || r.Header.Get("content-type") != "text/plain; charset=utf-8" {
		t.Fatalf("%+v", r)
	}
}
