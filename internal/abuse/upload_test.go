package abuse

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// wav8Header is the 44-byte header of a mono 8-bit PCM WAV at rate holding dataLen bytes.
func wav8Header(rate, dataLen int) []byte {
	h := make([]byte, 44)
	le := binary.LittleEndian
	copy(h, "RIFF")
	le.PutUint32(h[4:], uint32(36+dataLen))
	copy(h[8:], "WAVEfmt ")
	le.PutUint32(h[16:], 16)
	le.PutUint16(h[20:], 1) // PCM
	le.PutUint16(h[22:], 1)
	le.PutUint32(h[24:], uint32(rate))
	le.PutUint32(h[28:], uint32(rate))
	le.PutUint16(h[32:], 1)
	le.PutUint16(h[34:], 8)
	copy(h[36:], "data")
	le.PutUint32(h[40:], uint32(dataLen))
	return h
}

// toneReader yields n bytes of an 8-bit 440 Hz tone at rate without holding them, and
// closes done when the last byte has been read.
type toneReader struct {
	n, off int
	rate   int
	done   chan struct{}
}

func (r *toneReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	k := min(len(p), r.n-r.off)
	for i := range k {
		x := math.Sin(2 * math.Pi * 440 * float64(r.off+i) / float64(r.rate))
		p[i] = byte(128 + 60*x)
	}
	r.off += k
	if r.off >= r.n && r.done != nil {
		close(r.done)
		r.done = nil
	}
	return k, nil
}

// wav8 is a whole 8-bit WAV of the given length, streamed.
func wav8(rate int, d time.Duration, done chan struct{}) (io.Reader, int) {
	n := int(d.Seconds() * float64(rate))
	return io.MultiReader(bytes.NewReader(wav8Header(rate, n)), &toneReader{n: n, rate: rate, done: done}), 44 + n
}

// procKB reads a "Vm…:  N kB" line of /proc/pid/status.
func procKB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", field, rest, err)
			}
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// F3: one 100 MiB upload of 8-bit 8 kHz WAV (3.6 h of audio). Before: the body was
// read whole, converted to float32, resampled and converted again: RSS 166 MB →
// 3.84 GB and 27 s of CPU before the first word. Now: the body is spooled to an
// unlinked file and decoded half a second at a time as the worker takes it, so the
// peak RSS (VmHWM, reset just before the upload) grows by at most 64 MB.
func TestF3UploadMemoryBounded(t *testing.T) {
	attack(t, "F3", "POST a 100 MiB 8-bit 8 kHz WAV (3.6 h of audio) and watch the server's peak memory",
		"the file is accepted and its audio reaches the worker; peak RSS grows ≤ 64 MB while it is received, checked and transcribed")
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	_, _, key := newTenant(t, srv, "bigfile", "team", 0)
	pid := srv.Pid()
	// Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0).
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS of the server: %v", err)
	}
	base := procKB(t, pid, "VmHWM")
	done := make(chan struct{})
	// 100 MiB in all, header included: the largest file the default --max-upload-mb takes.
	body, size := wav8(8000, time.Duration(100<<20-44)*time.Second/8000, done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/listen?model=tiny.en", body)
	req.ContentLength = int64(size)
	req.Header.Set("Authorization", "Token "+key)
	req.Header.Set("Content-Type", "audio/wav")
	var status atomic.Int64
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			status.Store(int64(resp.StatusCode))
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Logf("answer: %d %s", resp.StatusCode, b)
		}
	}()
	start := time.Now()
	select {
	case <-done:
	case <-answered:
		t.Fatalf("answered %d before the upload was read", status.Load())
	case <-time.After(2 * time.Minute):
		t.Fatal("the upload was not read within 2 minutes")
	}
	uploaded := time.Since(start)
	// Its audio reaches the worker: the session is granted at batch priority.
	srv.WaitOutput("tenant=bigfile model=tiny.en", 30*time.Second)
	granted := time.Since(start) - uploaded
	// Let it transcribe a while, sampling nothing: VmHWM keeps the peak.
	time.Sleep(pick(10*time.Second, 30*time.Second))
	if s := status.Load(); s != 0 {
		t.Fatalf("the upload was answered %d while it should still be transcribing", s)
	}
	peak := procKB(t, pid, "VmHWM")
	cancel()
	growth := (peak - base) / 1024
	measured(t, "VmHWM %d → %d MB (+%d MB) for %d MiB; upload %.1f s, first audio at the worker %.1f s after it",
		base/1024, peak/1024, growth, size>>20, uploaded.Seconds(), granted.Seconds())
	if growth > 64 {
		t.Fatalf("peak RSS grew %d MB for one upload, want ≤ 64 MB", growth)
	}
}

// F3b: the size limit in audio seconds as well as bytes, per plan and per server; and
// a file the balance does not cover. Before: only a 100 MiB byte limit, and a file was
// transcribed (and billed past zero) whatever the plan. Now: the length is read from
// the header (or a raw body's size) before anything is decoded or billed.
func TestF3bAudioSecondsLimit(t *testing.T) {
	attack(t, "F3b", "POST files longer than the plan (trial: 30 min) or the server (--max-prerecorded-audio) allows, one the balance does not cover, and one over --max-upload-mb",
		"413 MAX_DURATION, 402 INSUFFICIENT_BALANCE and 413 MESSAGE_TOO_LARGE before any audio is decoded; nothing billed")
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t, "--max-prerecorded-audio", "40m", "--max-upload-mb", "24")
	trial, _, trialKey := newTenant(t, srv, "trialco", "trial", 0)
	team, _, teamKey := newTenant(t, srv, "teamco", "team", 0)
	payg, _, paygKey := newTenant(t, srv, "paygco", "payg", 1) // 1 cent: 50 s at $0.72/h
	cases := []struct {
		name, key string
		d         time.Duration
		status    int
		code      string
	}{
		{"trial plan, 31 min", trialKey, 31 * time.Minute, http.StatusRequestEntityTooLarge, "MAX_DURATION"},
		{"server limit 40 min, 45 min on team", teamKey, 45 * time.Minute, http.StatusRequestEntityTooLarge, "MAX_DURATION"},
		{"payg balance for 50 s, 120 s file", paygKey, 120 * time.Second, http.StatusPaymentRequired, "INSUFFICIENT_BALANCE"},
		{"25 MiB over --max-upload-mb 24", teamKey, time.Duration(25<<20) * time.Second / 8000, http.StatusRequestEntityTooLarge, "MESSAGE_TOO_LARGE"},
	}
	for _, c := range cases {
		// As curl and most HTTP clients send a large file: with its length and
		// "Expect: 100-continue", so a refusal known from the headers costs no upload.
		r, n := wav8(8000, c.d, nil)
		body, _ := io.ReadAll(r)
		if len(body) != n {
			t.Fatalf("%s: %d bytes, want %d", c.name, len(body), n)
		}
		status, code := postFile(t, srv, c.key, "model=tiny.en", bytes.NewReader(body), "Expect", "100-continue")
		if status != c.status || code != c.code {
			t.Fatalf("%s: %d %s, want %d %s", c.name, status, code, c.status, c.code)
		}
	}
	// Within every limit, the same tenant's file is transcribed (the limits are not
	// refusing everything).
	body, _ := wav8(8000, 20*time.Second, nil)
	if status, code := postFile(t, srv, paygKey, "model=tiny.en", body); status != http.StatusOK {
		t.Fatalf("a 20 s file within the payg balance: %d %s", status, code)
	}
	if got := billedTotal(t, trial, "trialco", 0); got != 0 {
		t.Fatalf("trial tenant billed %d ms for refused files", got)
	}
	if got := billedTotal(t, team, "teamco", 0); got != 0 {
		t.Fatalf("team tenant billed %d ms for refused files", got)
	}
	if got := billedTotal(t, payg, "paygco", 20000); got != 20000 {
		t.Fatalf("payg tenant billed %d ms, want exactly the 20 000 of the accepted file", got)
	}
}

// H3: malformed uploads. Each is refused with a clear 400 before any audio is billed,
// and the server takes the next good file.
func TestH3MalformedUploads(t *testing.T) {
	attack(t, "H3", "POST a WAV whose data chunk claims 1 GiB, a cut header, a float WAV ending in NaN, an empty body, and JSON bodies that are not {\"url\": …}",
		"400 BAD_AUDIO or BAD_REQUEST for each, 0 ms billed; the next good file is transcribed")
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	store, _, key := newTenant(t, srv, "fuzzy", "team", 0)
	huge := wav8Header(8000, 1<<30)
	huge = append(huge, make([]byte, 8000)...)
	nanWAV := wav8Header(16000, 0)
	binary.LittleEndian.PutUint16(nanWAV[20:], 3) // IEEE float
	binary.LittleEndian.PutUint16(nanWAV[34:], 32)
	binary.LittleEndian.PutUint16(nanWAV[32:], 4)
	samples := make([]byte, 4*16000)
	binary.LittleEndian.PutUint32(samples[len(samples)-4:], math.Float32bits(float32(math.NaN())))
	binary.LittleEndian.PutUint32(nanWAV[40:], uint32(len(samples)))
	nanWAV = append(nanWAV, samples...)
	cases := []struct {
		name, ctype string
		body        []byte
		code        string
	}{
		{"data chunk claims 1 GiB", "audio/wav", huge, "BAD_AUDIO"},
		{"header cut at 30 bytes", "audio/wav", wav8Header(8000, 100)[:30], "BAD_AUDIO"},
		{"float WAV ending in NaN", "audio/wav", nanWAV, "BAD_AUDIO"},
		{"empty body", "audio/wav", nil, "BAD_AUDIO"},
		{"JSON that is not {url}", "application/json", []byte(`{"uri": "https://example.com/a.wav"}`), "BAD_REQUEST"},
		{"JSON cut short", "application/json", []byte(`{"url": "https://exa`), "BAD_REQUEST"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/listen?model=tiny.en", bytes.NewReader(c.body))
		req.Header.Set("Authorization", "Token "+key)
		req.Header.Set("Content-Type", c.ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"`+c.code+`"`) {
			t.Fatalf("%s: %d %s, want 400 %s", c.name, resp.StatusCode, b, c.code)
		}
	}
	if status, code := postFile(t, srv, key, "model=tiny.en", bytes.NewReader(jfkWAV(t))); status != http.StatusOK {
		t.Fatalf("a good file after the bad ones: %d %s", status, code)
	}
	// Only the good file (11 s) is billed.
	if got := billedTotal(t, store, "fuzzy", 11000); got != 11000 {
		t.Fatalf("billed %d ms, want the 11 000 of the good file only", got)
	}
}
