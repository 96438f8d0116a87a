package testdata

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// EnvDir names the environment variable that overrides where the test data lives.
const EnvDir = "EARSHOT_TESTDATA"

// ErrNotFound means the shared test data folder could not be located.
var ErrNotFound = errors.New("shared test data not found")

// Dir returns the absolute path of the shared test data folder: $EARSHOT_TESTDATA
// when set, else ../shared/testdata beside the module root, found by walking
// up from the working directory to the first go.mod.
func Dir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			return "", fmt.Errorf("%s=%q: %w", EnvDir, d, err)
		}
		if !isDir(abs) {
			return "", fmt.Errorf("%s=%q is not a directory: %w", EnvDir, d, ErrNotFound)
		}
		return abs, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			td := filepath.Join(filepath.Dir(d), "shared", "testdata")
			if !isDir(td) {
				return "", fmt.Errorf("%s (module root %s; set %s): %w", td, d, EnvDir, ErrNotFound)
			}
			return td, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s (set %s): %w", wd, EnvDir, ErrNotFound)
		}
	}
}

// Path joins elements onto Dir.
func Path(elem ...string) (string, error) {
	d, err := Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(append([]string{d}, elem...)...), nil
}

// Require returns Dir, or stops the test: it skips with the reason when the
// data is missing, except under CI (CI=true), where missing data fails.
func Require(tb testing.TB) string {
	tb.Helper()
	d, err := Dir()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("test data required in CI: %v", err)
		}
		tb.Skipf("skipping: %v", err)
	}
	return d
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
