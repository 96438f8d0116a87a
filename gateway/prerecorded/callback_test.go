package prerecorded

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// longRecording concatenates the speech manifest's recordings with gap seconds of
// silence after each, repeating the list until at least minSec seconds, and writes it
// as one 16 kHz WAV file in a temp dir. It returns the file's bytes and duration.
func longRecording(t *testing.T, minSec, gap float64) ([]byte, float64) {
	t.Helper()
	items, err := testdata.LoadManifest(filepath.Join(testdata.Require(t), testdata.SpeechManifest))
	if err != nil {
		t.Fatal(err)
	}
	var all []float32
	silence := make([]float32, int(gap*16000))
	for len(all) < int(minSec*16000) {
		for _, it := range items {
			b, err := os.ReadFile(it.WAV)
			if err != nil {
				t.Fatal(err)
			}
			f, chans, err := ingest.ReadWAV(bytes.NewReader(b))
			if err != nil || f.SampleRate != 16000 || len(chans) != 1 {
				t.Fatalf("%s: %v (rate %d)", it.ID, err, f.SampleRate)
			}
			all = append(all, chans[0]...)
			all = append(all, silence...)
			if len(all) >= int(minSec*16000) {
				break
			}
		}
	}
	p := filepath.Join(t.TempDir(), "long.wav")
	fh, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := ingest.WriteWAV16(fh, 16000, all); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b, float64(len(all)) / 16000
}

// callbackSink is a customer's callback endpoint that fails its first attempt with 500.
type callbackSink struct {
	mu       sync.Mutex
	attempts int
	accepted []delivery
}

type delivery struct {
	requestID, idemKey string
	body               []byte
}

func (s *callbackSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	if s.attempts == 1 {
		http.Error(w, "try again", http.StatusInternalServerError)
		return
	}
	s.accepted = append(s.accepted, delivery{r.Header.Get("dg-request-id"), r.Header.Get("Idempotency-Key"), b})
}

func (s *callbackSink) snapshot() (int, []delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts, append([]delivery(nil), s.accepted...)
}

// TestCallbackLongFileDeliveredOnce queues a 5-minute recording with callback= (real
// tiny.en), watches its progress rise through GET /v1/requests/{id}, and checks that
// the callback endpoint, which fails the first attempt, accepts exactly one delivery of
// the whole result; the queued upload is gone afterwards.
func TestCallbackLongFileDeliveredOnce(t *testing.T) {
	sink := &callbackSink{}
	cb := httptest.NewServer(sink)
	defer cb.Close()
	r := newRig(t, nil, func(c *Config) { c.AllowLoopback = true })
	wav, secs := longRecording(t, 300, 4)
	start := time.Now()

	resp, body := r.post(t, "acme", "callback="+url.QueryEscape(cb.URL+"/hook"), "audio/wav", "", wav)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var queued struct {
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(body, &queued); err != nil || queued.RequestID == "" || queued.RequestID != resp.Header.Get("dg-request-id") {
		t.Fatalf("202 body %s (%v)", body, err)
	}
	id := queued.RequestID
	// A piece of the uploaded audio (speech, not silence) is in the JetStream store
	// while the job waits: the scan at the end can find it.
	needle := audioNeedle(t, wav)
	if files := testutil.FilesContaining(t, r.ns.StoreDir(), needle); len(files) == 0 {
		t.Fatal("the queued upload's audio is not in the JetStream store: the scan below could not fail")
	}

	// Poll the status until done, keeping every percent seen while running.
	var percents []int
	var st struct {
		Status
		Response json.RawMessage `json:"response"`
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		resp, body := r.request(t, http.MethodGet, "acme", id)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET status: %d %s", resp.StatusCode, body)
		}
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		if st.State == StateRunning && (len(percents) == 0 || percents[len(percents)-1] != st.Percent) {
			percents = append(percents, st.Percent)
		}
		if st.State == StateDone || st.State == StateFailed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %s at %d%% after 5 min; percents %v\nlogs:\n%s", st.State, st.Percent, percents, r.logs)
		}
		time.Sleep(250 * time.Millisecond)
	}
	took := time.Since(start)
	if st.State != StateDone || st.Percent != 100 || !st.Delivered || string(st.RequestID) != id {
		t.Fatalf("final status %+v\nlogs:\n%s", st.Status, r.logs)
	}
	if len(st.Response) != 0 {
		t.Fatalf("status shows a response that was not retained: %s", st.Response)
	}
	inner := 0
	for i, p := range percents {
		if i > 0 && p <= percents[i-1] {
			t.Fatalf("progress went back: %v", percents)
		}
		if p > 0 && p < 100 {
			inner++
		}
	}
	if inner < 3 {
		t.Fatalf("progress seen while running: %v; want it rising through at least 3 values", percents)
	}

	// Exactly one accepted delivery (after one failed attempt), and no more later.
	time.Sleep(500 * time.Millisecond)
	attempts, got := sink.snapshot()
	if attempts != 2 || len(got) != 1 {
		t.Fatalf("%d attempts, %d accepted; want 2 attempts and 1 accepted", attempts, len(got))
	}
	d := got[0]
	if d.requestID != id || d.idemKey != id {
		t.Fatalf("delivery headers: dg-request-id %q, Idempotency-Key %q; want %q", d.requestID, d.idemKey, id)
	}
	var res Response
	if err := json.Unmarshal(d.body, &res); err != nil {
		t.Fatalf("callback body: %v", err)
	}
	if res.Metadata.RequestID != id || res.Metadata.Duration < secs-0.1 || res.Metadata.Duration > secs+0.1 {
		t.Fatalf("callback metadata %+v, want id %s and %.1f s", res.Metadata, id, secs)
	}
	text := strings.ToLower(res.Transcript())
	for _, w := range []string{"americans", "country", "quilter", "gospel"} {
		if !strings.Contains(text, w) {
			t.Errorf("delivered transcript lacks %q", w)
		}
	}
	if ms := r.meter.get(bus.SessionID(id)); ms < int64(secs*1000)-100 || ms > int64(secs*1000)+100 {
		t.Errorf("metered %d ms for %.1f s", ms, secs)
	}

	// The queued upload was deleted after processing, and the job left the queue.
	ctx := context.Background()
	obs, err := r.js.ObjectStore(ctx, bus.PrerecordedAudioBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.GetInfo(ctx, objName("acme", bus.SessionID(id))); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Fatalf("queued upload still kept: %v\nlogs:\n%s", err, r.logs)
	}
	s, err := r.js.Stream(ctx, bus.PrerecordedJobStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Fatalf("job stream still holds %d messages (%v)", info.State.Msgs, err)
	}
	// Nor are its bytes left in the block files: the upload was erased in place, not
	// only marked deleted.
	if files := testutil.FilesContaining(t, r.ns.StoreDir(), needle); len(files) > 0 {
		t.Fatalf("the processed upload's audio is still on disk in %v", files)
	}
	t.Logf("%.0f s of audio: done in %v (%.1fx real time), progress %v, %d words delivered",
		secs, took.Round(time.Second), secs/took.Seconds(), percents, len(strings.Fields(text)))
}

// audioNeedle returns 64 bytes of wav's samples from a loud stretch (after its
// 44-byte header), distinctive enough to be found only where the audio was stored.
func audioNeedle(t *testing.T, wav []byte) []byte {
	t.Helper()
	for off := 44 + 32000; off+64 <= len(wav); off += 6400 {
		loud := 0
		for i := off; i+1 < off+64; i += 2 {
			if v := int16(uint16(wav[i]) | uint16(wav[i+1])<<8); v > 1000 || v < -1000 {
				loud++
			}
		}
		if loud >= 8 {
			return wav[off : off+64]
		}
	}
	t.Fatal("no loud stretch in the recording")
	return nil
}
