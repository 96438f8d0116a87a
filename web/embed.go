package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// contentTypes is set explicitly rather than from the system MIME table, which varies
// by machine (.ts is video/mp2t on some) and says text/javascript for .js.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "application/javascript; charset=utf-8",
	".mjs":  "application/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".ts":   "text/plain; charset=utf-8", // the SDK's .d.ts, for people to read
	".json": "application/json",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".map":  "application/json",
}

// Handler serves the demo page at / and its assets (the SDK at /sdk/earshot.js and
// /sdk/earshot.d.ts). Mount it at "/" beside the API routes; it answers 404 for paths
// that are not assets and 405 for methods other than GET and HEAD. Safe for
// concurrent use.
func Handler() http.Handler {
	assets := map[string]asset{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(b)
		assets[strings.TrimPrefix(p, "static")] = asset{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		// The tree is compiled in; failing to walk it is a build defect.
		panic("web: walk embedded assets: " + err.Error())
	}
	return &handler{assets: assets}
}

type handler struct {
	assets map[string]asset
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if p == "/" || p == "" {
		p = "/index.html"
	}
	a, ok := h.assets[p]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("ETag", a.etag)
	// Assets are not versioned by name, so every use revalidates (cheap: 304 by ETag).
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	if a.contentType == contentTypes[".html"] {
		hd.Set("Content-Security-Policy", csp(r.Host))
		hd.Set("Permissions-Policy", "microphone=(self)")
		hd.Set("X-Frame-Options", "DENY")
	}
	http.ServeContent(w, r, p, time.Time{}, bytes.NewReader(a.body))
}

// csp allows scripts, styles, workers and fetches from the page's own origin, and
// WebSockets to the same host (connect-src 'self' covers ws: only in newer browsers,
// so the host is named explicitly). Nothing inline, no eval, no framing.
func csp(host string) string {
	connect := "'self'"
	if validHost(host) {
		connect += " ws://" + host + " wss://" + host
	}
	return strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data:",
		"media-src 'self' blob:",
		"worker-src 'self'",
		"connect-src " + connect,
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}

// validHost reports whether h (from the request's Host header, so client-chosen) is
// a plain host[:port] that cannot break out of the CSP header.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}
