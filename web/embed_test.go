package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	h := Handler()
	tests := []struct {
		name, method, path string
		status             int
		contentType        string
		contains           []string
	}{
		{"index has the mic button", "GET", "/", 200, "text/html; charset=utf-8",
			[]string{`id="mic"`, `aria-label="Start microphone"`, `aria-live="polite"`, `src="app.js"`}},
		{"worklet is JavaScript", "GET", "/capture-worklet.js", 200, "application/javascript; charset=utf-8",
			[]string{"registerProcessor(\"earshot-capture\""}},
		{"app", "GET", "/app.js", 200, "application/javascript; charset=utf-8", []string{"./sdk/earshot.js"}},
		{"style", "GET", "/style.css", 200, "text/css; charset=utf-8", []string{".partial"}},
		{"sdk", "GET", "/sdk/earshot.js", 200, "application/javascript; charset=utf-8", []string{"export function connect"}},
		{"sdk types", "GET", "/sdk/earshot.d.ts", 200, "text/plain; charset=utf-8", []string{"export declare function connect"}},
		{"unknown path", "GET", "/nope.js", 404, "", nil},
		{"no directory listing", "GET", "/sdk/", 404, "", nil},
		{"no traversal", "GET", "/../embed.go", 404, "", nil},
		{"post refused", "POST", "/", 405, "", nil},
		{"head", "HEAD", "/", 200, "text/html; charset=utf-8", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, "http://demo.example:8080"+tc.path, nil))
			if rec.Code != tc.status {
				t.Fatalf("%s %s: status %d, want %d", tc.method, tc.path, rec.Code, tc.status)
			}
			if tc.contentType != "" {
				if got := rec.Header().Get("Content-Type"); got != tc.contentType {
					t.Errorf("Content-Type %q, want %q", got, tc.contentType)
				}
			}
			for _, s := range tc.contains {
				if !strings.Contains(rec.Body.String(), s) {
					t.Errorf("body lacks %q", s)
				}
			}
		})
	}
}

func TestIndexHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://demo.example:8080/", nil))
	h := rec.Header()
	if got := h.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("Cache-Control %q, want no-cache", got)
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "connect-src 'self' ws://demo.example:8080 wss://demo.example:8080", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("CSP allows unsafe sources: %q", csp)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no nosniff")
	}
	etag := h.Get("ETag")
	rec2 := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("If-None-Match", etag)
	Handler().ServeHTTP(rec2, req)
	if rec2.Code != http.StatusNotModified {
		t.Errorf("revalidation with ETag %s: status %d, want 304", etag, rec2.Code)
	}
}

func TestCSPRejectsHostileHost(t *testing.T) {
	for _, host := range []string{"evil.com; script-src *", "a b", "x\"y", ""} {
		if got := csp(host); strings.Contains(got, "ws://") {
			t.Errorf("csp(%q) = %q: host must not be echoed", host, got)
		}
	}
	if got := csp("[::1]:8080"); !strings.Contains(got, "wss://[::1]:8080") {
		t.Errorf("csp of an IPv6 host: %q", got)
	}
}
