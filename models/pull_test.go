package models

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// pullFixture serves whisper.cpp's real loader test file (a valid ggml
// header+vocabulary) and returns a card describing it.
func pullFixture(t *testing.T) ([]byte, Card) {
	b, err := os.ReadFile(sharedTestdata(t, "models/for-tests-ggml-tiny.en.bin"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return b, Card{Name: "tiny.en", Kind: KindASR, File: "ggml-tiny.en.bin", SizeBytes: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
}

func serve(content []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "m.bin", time.Time{}, bytes.NewReader(content))
	}
}

func TestPull(t *testing.T) {
	content, card := pullFixture(t)
	srv := httptest.NewServer(serve(content))
	defer srv.Close()
	dir := t.TempDir()
	var progress bytes.Buffer
	p, err := Pull(context.Background(), card, dir, PullOptions{URL: srv.URL, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if p != filepath.Join(dir, card.File) || !bytes.Equal(got, content) {
		t.Fatalf("pulled %s: %d bytes", p, len(got))
	}
	if !strings.Contains(progress.String(), "(100.0%)") || !strings.Contains(progress.String(), "MB/s") {
		t.Errorf("progress: %q", progress.String())
	}
	if _, err := os.Stat(p + ".part"); !os.IsNotExist(err) {
		t.Errorf(".part left behind")
	}
}

func TestPullResumesAfterCutConnection(t *testing.T) {
	content, card := pullFixture(t)
	var mu sync.Mutex
	var ranges []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		first := len(ranges) == 0
		ranges = append(ranges, r.Header.Get("Range"))
		mu.Unlock()
		if first { // promise everything, send a third, drop the connection
			w.Header().Set("Content-Length", itoa(len(content)))
			w.Write(content[:len(content)/3])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		serve(content)(w, r)
	}))
	defer srv.Close()
	dir := t.TempDir()
	final := filepath.Join(dir, card.File)
	_, err := Pull(context.Background(), card, dir, PullOptions{URL: srv.URL})
	if !errors.Is(err, ErrDownload) || !strings.Contains(err.Error(), "resume") {
		t.Fatalf("first pull: %v", err)
	}
	if _, err := os.Stat(final); !os.IsNotExist(err) {
		t.Fatal("a partial download appeared under the final name")
	}
	st, err := os.Stat(final + ".part")
	if err != nil || st.Size() == 0 || st.Size() >= int64(len(content)) {
		t.Fatalf(".part after the cut: %v, %v", st, err)
	}
	if _, err := Pull(context.Background(), card, dir, PullOptions{URL: srv.URL}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(final)
	if !bytes.Equal(got, content) {
		t.Fatal("resumed file differs")
	}
	if len(ranges) != 2 || ranges[0] != "" || ranges[1] != "bytes="+itoa(int(st.Size()))+"-" {
		t.Fatalf("Range headers %q", ranges)
	}
}

func TestPullRejectsCorruptContent(t *testing.T) {
	content, card := pullFixture(t)
	bad := bytes.Clone(content)
	bad[len(bad)/2] ^= 0xff
	srv := httptest.NewServer(serve(bad))
	defer srv.Close()
	dir := t.TempDir()
	_, err := Pull(context.Background(), card, dir, PullOptions{URL: srv.URL})
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("error %v, want ErrChecksum", err)
	}
	for _, p := range []string{card.File, card.File + ".part"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !os.IsNotExist(err) {
			t.Errorf("%s exists after a checksum failure", p)
		}
	}
}

func TestPullNotFound(t *testing.T) {
	_, card := pullFixture(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	dir := t.TempDir()
	_, err := Pull(context.Background(), card, dir, PullOptions{URL: srv.URL})
	if !errors.Is(err, ErrDownload) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("error %v, want ErrDownload with 404", err)
	}
	for _, p := range []string{card.File, card.File + ".part"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !os.IsNotExist(err) {
			t.Errorf("%s exists after a 404", p)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
