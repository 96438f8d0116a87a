package models

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultDir(t *testing.T) {
	t.Setenv("EARSHOT_MODEL_DIR", "/x/models")
	if d := DefaultDir(); d != "/x/models" {
		t.Errorf("EARSHOT_MODEL_DIR: %s", d)
	}
	t.Setenv("EARSHOT_MODEL_DIR", "")
	t.Setenv("XDG_CACHE_HOME", "/c")
	if d := DefaultDir(); d != "/c/earshot/models" {
		t.Errorf("XDG_CACHE_HOME: %s", d)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/h")
	if d := DefaultDir(); d != "/h/.cache/earshot/models" {
		t.Errorf("HOME: %s", d)
	}
}

func TestResolveAndInstalled(t *testing.T) {
	dir := t.TempDir()
	_, err := Resolve(dir, "tiny.en")
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "earshot models pull tiny.en") ||
		!strings.Contains(err.Error(), "make model") {
		t.Fatalf("missing tiny.en: %v", err)
	}
	_, err = Resolve(dir, "base")
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "earshot models pull base") {
		t.Fatalf("missing base: %v", err)
	}
	if _, err := Resolve(dir, "nope"); !errors.Is(err, ErrUnknownModel) {
		t.Fatalf("unknown: %v", err)
	}
	for _, n := range []string{"ggml-base.bin", "ggml-base.bin.part", "ggml-mine.bin", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := Resolve(dir, "base")
	if err != nil || p != filepath.Join(dir, "ggml-base.bin") {
		t.Fatalf("Resolve(base) = %q, %v", p, err)
	}
	own := filepath.Join(dir, "ggml-mine.bin")
	if p, err := Resolve(dir, own); err != nil || p != own {
		t.Fatalf("Resolve(path) = %q, %v", p, err)
	}
	if _, err := Resolve(dir, filepath.Join(dir, "missing.bin")); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("missing path: %v", err)
	}
	got, err := Installed(dir)
	if err != nil || len(got) != 2 || got[0].Name != "base" || !got[0].InCatalog || got[1].InCatalog {
		t.Fatalf("Installed = %+v, %v", got, err)
	}
	if got, err := Installed(filepath.Join(dir, "absent")); err != nil || len(got) != 0 {
		t.Fatalf("absent dir: %+v, %v", got, err)
	}
}
