package models

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestInstallVerifiesChecksum(t *testing.T) {
	card, err := Lookup("silero-v6.2.0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.bin")
	if err := os.WriteFile(bad, []byte("not silero"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(card, bad, dir); !errors.Is(err, ErrChecksum) {
		t.Fatalf("Install of a wrong file: err = %v, want ErrChecksum", err)
	}
	if _, err := os.Stat(filepath.Join(dir, card.File)); !os.IsNotExist(err) {
		t.Fatalf("a rejected file was left under the final name: %v", err)
	}
	src := filepath.Join("..", "..", "shared", "testdata", "models", "ggml-silero-v6.2.0.bin")
	if _, err := os.Stat(src); err != nil {
		t.Skipf("SKIPPING: %s not present", src)
	}
	got, err := Install(card, src, dir)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := Resolve(dir, "silero-v6.2.0"); err != nil || p != got {
		t.Fatalf("Resolve after Install = %q, %v; want %q", p, err, got)
	}
}
