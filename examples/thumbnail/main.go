// Command thumbnail is a gust function that makes thumbnails: POST a JPEG or
// PNG image and get back a PNG scaled to ?w= pixels wide (default 128, at
// most 2048), keeping the aspect ratio. A body that is not an image gets a
// 400 that says so.
//
// Build: gust build . -o thumbnail.wasm
package main

import (
	"bytes"
	"fmt"
	"image"
	_ "image/jpeg" // registers the JPEG decoder with image.Decode
	"image/png"
	"net/http"
	"strconv"

	"golang.org/x/image/draw"

	"github.com/gustfaas/gust/sdk"
)

const (
	defaultWidth = 128
	maxWidth     = 2048
	// maxPixels bounds the decoded source so a small, highly compressed
	// image cannot ask for gigabytes of memory.
	maxPixels = 40_000_000
)

func init() { sdk.HandleFunc(thumbnail) }

func thumbnail(w http.ResponseWriter, r *http.Request) {
	width := defaultWidth
	if s := r.URL.Query().Get("w"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxWidth {
			http.Error(w, fmt.Sprintf("w must be a whole number from 1 to %d, not %q", maxWidth, s), http.StatusBadRequest)
			return
		}
		width = n
	}
	body := new(bytes.Buffer)
	if _, err := body.ReadFrom(r.Body); err != nil {
		http.Error(w, "cannot read the request body", http.StatusBadRequest)
		return
	}
	if body.Len() == 0 {
		http.Error(w, "send a JPEG or PNG image as the request body", http.StatusBadRequest)
		return
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(body.Bytes()))
	if err != nil {
		http.Error(w, "the request body is not a JPEG or PNG image", http.StatusBadRequest)
		return
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width*cfg.Height > maxPixels {
		http.Error(w, fmt.Sprintf("image of %dx%d pixels is empty or too large", cfg.Width, cfg.Height), http.StatusBadRequest)
		return
	}
	src, _, err := image.Decode(body)
	if err != nil {
		http.Error(w, fmt.Sprintf("the %s image is damaged: %v", format, err), http.StatusBadRequest)
		return
	}
	b := src.Bounds()
	height := max(1, (b.Dy()*width+b.Dx()/2)/b.Dx())
	dst := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, b, draw.Src, nil)

	var out bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&out, dst); err != nil {
		http.Error(w, "cannot encode the thumbnail", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("X-Source-Format", format)
	w.Header().Set("X-Source-Size", fmt.Sprintf("%dx%d", b.Dx(), b.Dy()))
	w.Write(out.Bytes())
}

func main() {}
