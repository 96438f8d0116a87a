package models

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// PullOptions tunes Pull. The zero value downloads card.URL with
// http.DefaultClient and no progress output.
type PullOptions struct {
	Client        *http.Client
	URL           string        // overrides card.URL (a mirror, a test server)
	Progress      io.Writer     // progress lines; nil for none
	ProgressEvery time.Duration // minimum time between lines; default 1s
	Force         bool          // download even if the file is installed
}

// Pull downloads card into dir and returns the final path. Bytes go to
// <file>.part first; an existing .part is resumed with an HTTP Range request.
// The finished file is checked (size, sha256 when the card has one, and the
// ggml header for ASR models), fsynced and renamed into place, so a partial
// or corrupt download never appears under the final name. After a cut
// connection or a write error (a full disk) the .part stays for the next
// Pull to resume; content that fails its checksum is deleted.
func Pull(ctx context.Context, card Card, dir string, opts PullOptions) (string, error) {
	if card.Kind == KindTurn {
		return "", fmt.Errorf("%s is not pulled into the model directory: run make turn-model (it extracts the model from PyPI pipecat-ai==1.14.0 and checks its sha256)", card.Name)
	}
	final := filepath.Join(dir, card.File)
	if _, err := os.Stat(final); err == nil && !opts.Force {
		return final, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	part := final + ".part"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer f.Close()
	d := &download{ctx: ctx, card: card, f: f, part: part, opts: opts, h: sha256.New()}
	if d.opts.Client == nil {
		d.opts.Client = http.DefaultClient
	}
	if d.opts.URL == "" {
		d.opts.URL = card.URL
	}
	if d.opts.ProgressEvery == 0 {
		d.opts.ProgressEvery = time.Second
	}
	if err := d.resumeHash(); err != nil {
		return "", err
	}
	if err := d.fetch(true); err != nil {
		if d.have == 0 {
			os.Remove(part) // nothing worth resuming
		}
		return "", fmt.Errorf("pull %s: %w", card.Name, err)
	}
	if err := d.verify(); err != nil {
		os.Remove(part)
		return "", fmt.Errorf("pull %s: %w", card.Name, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("pull %s: sync: %w", card.Name, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("pull %s: close: %w", card.Name, err)
	}
	if err := os.Rename(part, final); err != nil {
		return "", err
	}
	return final, syncDir(dir)
}

type download struct {
	ctx   context.Context
	card  Card
	f     *os.File
	part  string
	opts  PullOptions
	h     hash.Hash
	have  int64 // bytes in .part, all fed to h
	total int64 // expected full size, 0 if unknown
}

// resumeHash feeds the bytes already in .part to the hash.
func (d *download) resumeHash() error {
	n, err := io.Copy(d.h, d.f)
	if err != nil {
		return fmt.Errorf("read %s: %w", d.part, err)
	}
	d.have, d.total = n, d.card.SizeBytes
	if d.total > 0 && d.have > d.total {
		return d.restart()
	}
	return nil
}

func (d *download) restart() error {
	if err := d.f.Truncate(0); err != nil {
		return err
	}
	if _, err := d.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	d.h.Reset()
	d.have = 0
	return nil
}

func (d *download) fetch(mayRetry bool) error {
	if d.total > 0 && d.have == d.total {
		return nil // a complete .part from an earlier run: just verify it
	}
	req, err := http.NewRequestWithContext(d.ctx, http.MethodGet, d.opts.URL, nil)
	if err != nil {
		return err
	}
	if d.have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", d.have))
	}
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v (run the pull again to resume from %d bytes)", ErrDownload, err, d.have)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && d.have > 0:
		var start, end, size int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%d", &start, &end, &size); err != nil || start != d.have {
			return fmt.Errorf("%w: bad Content-Range %q for a resume at %d", ErrDownload, resp.Header.Get("Content-Range"), d.have)
		}
		if d.total == 0 {
			d.total = size
		}
	case resp.StatusCode == http.StatusOK:
		if d.have > 0 { // server ignored Range: start over
			if err := d.restart(); err != nil {
				return err
			}
		}
		if d.total == 0 && resp.ContentLength > 0 {
			d.total = resp.ContentLength
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && mayRetry:
		if err := d.restart(); err != nil {
			return err
		}
		resp.Body.Close()
		return d.fetch(false)
	default:
		return fmt.Errorf("%w: GET %s: %s", ErrDownload, d.opts.URL, resp.Status)
	}
	return d.copy(resp.Body)
}

func (d *download) copy(body io.Reader) error {
	buf := make([]byte, 256<<10)
	start, last := time.Now(), time.Now()
	startHave := d.have
	for {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := d.f.Write(buf[:n]); err != nil {
				return fmt.Errorf("write %s: %w (partial download kept for resume)", d.part, err)
			}
			d.h.Write(buf[:n])
			d.have += int64(n)
			if d.opts.Progress != nil && time.Since(last) >= d.opts.ProgressEvery {
				last = time.Now()
				d.progress(startHave, start)
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("%w: connection lost after %d bytes: %v (run the pull again to resume)", ErrDownload, d.have, rerr)
		}
	}
	if d.opts.Progress != nil {
		d.progress(startHave, start)
	}
	return nil
}

func (d *download) progress(startHave int64, start time.Time) {
	rate := float64(d.have-startHave) / 1e6 / max(time.Since(start).Seconds(), 1e-3)
	if d.total > 0 {
		fmt.Fprintf(d.opts.Progress, "pull %s: %.1f/%.1f MB (%.1f%%) %.1f MB/s\n", d.card.Name,
			float64(d.have)/1e6, float64(d.total)/1e6, 100*float64(d.have)/float64(d.total), rate)
		return
	}
	fmt.Fprintf(d.opts.Progress, "pull %s: %.1f MB %.1f MB/s\n", d.card.Name, float64(d.have)/1e6, rate)
}

func (d *download) verify() error {
	if d.total > 0 && d.have != d.total {
		return fmt.Errorf("%w: got %d bytes, want %d", ErrDownload, d.have, d.total)
	}
	if d.card.SHA256 != "" {
		want, err := hex.DecodeString(d.card.SHA256)
		if err != nil {
			return fmt.Errorf("catalog sha256 %q: %w", d.card.SHA256, err)
		}
		if got := d.h.Sum(nil); !bytes.Equal(got, want) {
			return fmt.Errorf("%w: %s has sha256 %x, want %s", ErrChecksum, d.card.File, got, d.card.SHA256)
		}
	}
	if d.card.Kind == KindASR {
		if _, err := ParseGGML(io.NewSectionReader(d.f, 0, d.have), d.have); err != nil {
			return err
		}
	}
	return nil
}
