package models

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultDir is where models live: $EARSHOT_MODEL_DIR, else
// $XDG_CACHE_HOME/earshot/models, else ~/.cache/earshot/models.
func DefaultDir() string {
	if d := os.Getenv("EARSHOT_MODEL_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "earshot", "models")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "earshot", "models")
	}
	return filepath.Join(home, ".cache", "earshot", "models")
}

// Resolve turns a catalog name (e.g. "tiny.en") or a file path into the path
// of an existing model file. A path is anything containing a separator or
// ending in ".bin". A missing file is ErrNotInstalled with the command that
// fetches it.
func Resolve(dir, name string) (string, error) {
	if strings.ContainsRune(name, os.PathSeparator) || strings.HasSuffix(name, ".bin") {
		if _, err := os.Stat(name); err != nil {
			if c, lerr := Lookup(filepath.Base(name)); lerr == nil {
				return "", fmt.Errorf("%w: %s: %v (run: %s)", ErrNotInstalled, name, err, fetchHint(c.Name))
			}
			return "", fmt.Errorf("%w: %s: %v", ErrNotInstalled, name, err)
		}
		return name, nil
	}
	c, err := Lookup(name)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, c.File)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w: %s is not in %s (run: %s)", ErrNotInstalled, c.Name, dir, fetchHint(c.Name))
	}
	return p, nil
}

func fetchHint(name string) string {
	h := "earshot models pull " + name
	if name == Default {
		h += ", or make model"
	}
	return h
}

// InstalledModel is a model file found in the model directory.
type InstalledModel struct {
	Name      string `json:"name"` // catalog name, or the file name for others
	Path      string `json:"path"`
	SizeBytes int64  `json:"size_bytes"`
	InCatalog bool   `json:"in_catalog"`
}

// Installed lists the ggml-*.bin files in dir (not .part or .tmp leftovers).
// A missing directory is an empty list.
func Installed(dir string) ([]InstalledModel, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []InstalledModel
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasPrefix(n, "ggml-") || !strings.HasSuffix(n, ".bin") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		m := InstalledModel{Name: n, Path: filepath.Join(dir, n), SizeBytes: fi.Size()}
		if c, err := Lookup(n); err == nil {
			m.Name, m.InCatalog = c.Name, true
		}
		out = append(out, m)
	}
	return out, nil
}
