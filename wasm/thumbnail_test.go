package wasm_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"strings"
	"testing"

	"github.com/gustfaas/gust"
	"github.com/gustfaas/gust/wasm/wasmtest"
)

func testImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	return img
}

func TestThumbnail(t *testing.T) {
	d := newDriver(t)
	inst := start(t, load(t, d, wasmtest.Thumbnail(t), gust.Spec{}, nil))
	src := testImage(400, 300)
	var pngBody, jpegBody bytes.Buffer
	if err := png.Encode(&pngBody, src); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&jpegBody, src, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		body          []byte
		query         string
		format        string
		width, height int
	}{
		{"png", pngBody.Bytes(), "w=100", "png", 100, 75},
		{"jpeg", jpegBody.Bytes(), "w=64", "jpeg", 64, 48},
		{"default width", pngBody.Bytes(), "", "png", 128, 96},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &gust.Request{Method: "POST", Path: "/", Query: tt.query, Header: http.Header{}, Body: tt.body}
			resp := invoke(t, inst, req)
			if resp.Status != 200 || resp.Header.Get("Content-Type") != "image/png" {
				t.Fatalf("%d %v %q", resp.Status, resp.Header, resp.Body[:min(len(resp.Body), 200)])
			}
			if got := resp.Header.Get("X-Source-Format"); got != tt.format {
				t.Fatalf("source format %q, want %q", got, tt.format)
			}
			img, err := png.Decode(bytes.NewReader(resp.Body))
			if err != nil {
				t.Fatalf("response is not a PNG: %v", err)
			}
			if b := img.Bounds(); b.Dx() != tt.width || b.Dy() != tt.height {
				t.Fatalf("thumbnail %dx%d, want %dx%d", b.Dx(), b.Dy(), tt.width, tt.height)
			}
		})
	}

	for _, bad := range []struct {
		name, query, body, msg string
	}{
		{"not an image", "", "hello, I am text", "not a JPEG or PNG image"},
		{"empty body", "", "", "send a JPEG or PNG image"},
		{"width out of range", "w=5000", string(pngBody.Bytes()), "w must be a whole number from 1 to 2048"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			resp := invoke(t, inst, &gust.Request{Method: "POST", Path: "/", Query: bad.query, Header: http.Header{}, Body: []byte(bad.body)})
			if resp.Status != 400 || !strings.Contains(string(resp.Body), bad.msg) {
				t.Fatalf("%d %q, want 400 %q", resp.Status, resp.Body, bad.msg)
			}
		})
	}
}
