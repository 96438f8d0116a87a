package models

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Install copies a local model file (for example one shipped with test data, or fetched by
// hand on another machine) into dir under the card's file name. The copy is verified like a
// download: the card's sha256 when it has one, and the ggml structure for speech models.
// It is written atomically; a bad file never appears under the final name.
func Install(card Card, src, dir string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("install %s: %w", card.Name, err)
	}
	defer in.Close()
	dst := filepath.Join(dir, card.File)
	h := sha256.New()
	err = writeAtomic(dst, func(w io.Writer) error {
		_, err := io.Copy(io.MultiWriter(w, h), in)
		return err
	}, func(tmp string) error {
		if card.SHA256 != "" && hex.EncodeToString(h.Sum(nil)) != card.SHA256 {
			return fmt.Errorf("%w: %s has sha256 %x, want %s", ErrChecksum, src, h.Sum(nil), card.SHA256)
		}
		if card.Kind == KindASR {
			if _, err := ReadGGMLInfo(tmp); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("install %s from %s: %w", card.Name, src, err)
	}
	return dst, nil
}
