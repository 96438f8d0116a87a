package prerecorded

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// upload is a request's audio spooled to an unlinked temporary file: memory does not
// grow with the file, and the bytes vanish with the last close, even after a crash.
type upload struct {
	f      *os.File
	size   int64
	sha256 string
	ctype  string
}

// spool copies at most limit bytes of r to a temporary file in dir ("" = the system's),
// hashing them on the way. More than limit bytes is ErrTooLarge; a read error is
// returned as is (an *http.MaxBytesError stays one).
func spool(dir string, r io.Reader, limit int64, ctype string) (*upload, error) {
	f, err := os.CreateTemp(dir, "earshot-upload-*")
	if err != nil {
		return nil, fmt.Errorf("spool the upload: %w (check --data-dir's disk)", err)
	}
	// Unlinked at once: the open descriptor keeps the bytes until Close.
	_ = os.Remove(f.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, limit+1))
	if err == nil && n > limit {
		err = fmt.Errorf("%w: the audio is over the %d-byte limit", ErrTooLarge, limit)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &upload{f: f, size: n, sha256: hex.EncodeToString(h.Sum(nil)), ctype: ctype}, nil
}

// reader reads the whole upload from its start; readers are independent.
func (u *upload) reader() *io.SectionReader { return io.NewSectionReader(u.f, 0, u.size) }

// head is the upload's first n bytes (fewer when it is shorter).
func (u *upload) head(n int) []byte {
	b := make([]byte, min(int64(n), u.size))
	if _, err := io.ReadFull(u.reader(), b); err != nil && !errors.Is(err, io.EOF) {
		return nil
	}
	return b
}

// Close frees the file.
func (u *upload) Close() error { return u.f.Close() }
