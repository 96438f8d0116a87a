package abuse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/earshot-dev/earshot/billing"
	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// billTenant creates tenant on "payg" with a large prepaid balance.
func billTenant(t *testing.T, srv *testutil.Serve, tenant bus.TenantID) (*billing.Store, string) {
	store, _, key := newTenant(t, srv, tenant, "payg", 1_000_000)
	return store, key
}

// billPCM is the first seconds of a real 16 kHz recording as PCM16 bytes.
func billPCM(t *testing.T, seconds int) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join(testdata.Require(t), "speech", "wav16k", "longform_dev.wav"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	format, chans, err := ingest.ReadWAV(f)
	if err != nil {
		t.Fatal(err)
	}
	return ingest.PCM16Bytes(ingest.Convert16kMono(format, chans))[:seconds*32000]
}

// streamResult is what one connection of billStream saw.
type streamResult struct {
	requestID string
	metadata  bool
	closeCode int
	errors    []string
}

// billStream opens /v1/listen with the query, sends pcm (linear16 at rate Hz, as
// fast as the gateway reads it), then CloseStream unless drop is set (then the TCP
// connection is cut), and reads until the server closes.
func billStream(t *testing.T, srv *testutil.Serve, key string, q url.Values, pcm []byte, drop bool) (streamResult, error) {
	t.Helper()
	u := srv.WSURL + "?" + q.Encode()
	conn, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {"Token " + key}})
	if err != nil {
		if resp != nil {
			return streamResult{}, fmt.Errorf("dial: HTTP %d: %w", resp.StatusCode, err)
		}
		return streamResult{}, err
	}
	defer conn.Close()
	res := streamResult{requestID: resp.Header.Get("dg-request-id")}
	for off := 0; off < len(pcm); off += 8000 {
		if err := conn.WriteMessage(websocket.BinaryMessage, pcm[off:min(off+8000, len(pcm))]); err != nil {
			return res, err
		}
	}
	if drop {
		// Let the gateway accept and meter what was sent, then vanish without a close.
		time.Sleep(1500 * time.Millisecond)
		return res, conn.UnderlyingConn().Close()
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"CloseStream"}`)); err != nil {
		return res, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				res.closeCode = ce.Code
				return res, nil
			}
			return res, err
		}
		var m struct {
			Type        string `json:"type"`
			Description string `json:"description"`
		}
		if json.Unmarshal(b, &m) == nil {
			switch m.Type {
			case "Metadata":
				res.metadata = true
			case "Error":
				res.errors = append(res.errors, m.Description)
			}
		}
	}
}

// billedTotal waits until the tenant's month usage reaches want, then checks that it
// stays there (nothing more arrives in the next second) and returns it.
func billedTotal(t *testing.T, store *billing.Store, tenant bus.TenantID, want int64) int64 {
	t.Helper()
	ctx := context.Background()
	total := func() int64 {
		m, err := store.MonthUsage(ctx, tenant, time.Now().UTC().Format("2006-01"))
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, v := range m {
			n += v
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for total() < want && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	return total()
}

// F1: a stream of 8 s, ended with CloseStream (every final delivered), then five
// connections that "resume" it from 0 with 8 s of audio each. Before: usage grew by 0
// ms for those 40 s (the resumed events shared ids with the first connection's and
// were dropped as duplicates). Now each is billed in full: 48 000 ms exactly.
func TestF1ResumeAfterCleanEndIsBilled(t *testing.T) {
	attack(t, "F1", "resume a finished stream from 0 five times with 8 s of new audio each",
		"every resumed ms is billed: 6 × 8 000 = 48 000 ms exactly")
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	store, key := billTenant(t, srv, "hopper")
	pcm := billPCM(t, 8)
	q := url.Values{"encoding": {"linear16"}, "sample_rate": {"16000"}}
	first, err := billStream(t, srv, key, q, pcm, false)
	if err != nil || first.requestID == "" || !first.metadata {
		t.Fatalf("first stream: %+v, %v", first, err)
	}
	resumes := pick(2, 5)
	for i := range resumes {
		rq := url.Values{"encoding": {"linear16"}, "sample_rate": {"16000"}, "resume": {first.requestID}, "resume_offset_ms": {"0"}}
		if r, err := billStream(t, srv, key, rq, pcm, false); err != nil {
			t.Fatalf("resume %d: %+v, %v", i+1, r, err)
		}
	}
	want := int64(8000 * (1 + resumes))
	if got := billedTotal(t, store, "hopper", want); got != want {
		t.Fatalf("billed %d ms for %d connections of 8 000 ms, want %d", got, 1+resumes, want)
	}
}

// F1b: another tenant names the first tenant's stream in resume. Before: accepted and
// billed 0 ms. Now: refused with 400 (parameter resume) and nothing billed.
func TestF1bResumeOtherTenantsStreamRefused(t *testing.T) {
	attack(t, "F1b", "resume another tenant's stream",
		"HTTP 400 naming resume before the upgrade; nothing billed to either tenant beyond the original stream")
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	storeA, keyA := billTenant(t, srv, "alice")
	storeB, keyB := billTenant(t, srv, "mallory")
	pcm := billPCM(t, 4)
	q := url.Values{"encoding": {"linear16"}, "sample_rate": {"16000"}}
	first, err := billStream(t, srv, keyA, q, pcm, true) // dropped: the record has credit
	if err != nil && first.requestID == "" {
		t.Fatal(err)
	}
	rq := url.Values{"encoding": {"linear16"}, "sample_rate": {"16000"}, "resume": {first.requestID}, "resume_offset_ms": {"0"}}
	_, err = billStream(t, srv, keyB, rq, pcm, false)
	if err == nil || !strings.Contains(err.Error(), "HTTP 400") {
		t.Fatalf("tenant B resuming tenant A's stream: %v, want HTTP 400", err)
	}
	if got := billedTotal(t, storeA, "alice", 4000); got != 4000 {
		t.Fatalf("alice billed %d ms, want 4000", got)
	}
	if got := billedTotal(t, storeB, "mallory", 0); got != 0 {
		t.Fatalf("mallory billed %d ms for a refused resume, want 0", got)
	}
}

// F1c: a genuine resume. The first connection sends 6 s mid-speech and vanishes (no
// CloseStream); it is billed 6 000 ms. The client resumes from 0 (the worst case: it
// claims nothing was finalised) with the same 6 s plus 4 s more. Unbilled audio must
// not exceed what the first connection paid for and never got a final for (≤ 6 000
// ms), and a second resume of the same stream gets no credit for that audio again.
func TestF1cResumeCreditBoundedByUnfinalisedAudio(t *testing.T) {
	attack(t, "F1c", "drop a connection mid-speech, resume from 0 twice",
		"unbilled ms ≤ the ms the first connection paid without a final, credited once")
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	store, key := billTenant(t, srv, "dropper")
	pcm := billPCM(t, 10)
	q := url.Values{"encoding": {"linear16"}, "sample_rate": {"16000"}}
	first, err := billStream(t, srv, key, q, pcm[:6*32000], true)
	if first.requestID == "" {
		t.Fatalf("first connection: %v", err)
	}
	if got := billedTotal(t, store, "dropper", 6000); got != 6000 {
		t.Fatalf("first connection billed %d ms, want 6000", got)
	}
	rq := url.Values{"encoding": {"linear16"}, "sample_rate": {"16000"}, "resume": {first.requestID}, "resume_offset_ms": {"0"}}
	if r, err := billStream(t, srv, key, rq, pcm, false); err != nil {
		t.Fatalf("resume: %+v, %v", r, err)
	}
	got := billedTotal(t, store, "dropper", 6000+4000)
	// Sent 16 000 ms in all; the credit is at most the 6 000 ms of the first connection.
	if got < 10000 || got > 16000 {
		t.Fatalf("billed %d ms for 6 000 + 10 000 ms sent: want between 10 000 (all of the first connection credited) and 16 000", got)
	}
	credit := 16000 - got
	t.Logf("first resume: %d ms credited", credit)
	// The same audio again: the stream's credit is spent and the second resume ended
	// cleanly, so all 10 000 ms are billed.
	if r, err := billStream(t, srv, key, rq, pcm, false); err != nil {
		t.Fatalf("second resume: %+v, %v", r, err)
	}
	if got2 := billedTotal(t, store, "dropper", got+10000); got2 != got+10000 {
		t.Fatalf("second resume billed %d ms, want exactly 10 000", got2-got)
	}
}

// F1d: a resume after the record's window (billing.ResumeWindow after the connection
// last marked it) is refused. The full form waits out the real window; the CI form
// resumes a stream id that never existed, which takes the same path.
func TestF1dResumeAfterWindowRefused(t *testing.T) {
	attack(t, "F1d", "resume a stream after the resume window (or one that never existed)",
		"HTTP 400 naming resume; nothing billed")
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	store, key := billTenant(t, srv, "latecomer")
	pcm := billPCM(t, 2)
	q := url.Values{"encoding": {"linear16"}, "sample_rate": {"16000"}}
	stream := string(bus.NewSessionID())
	want := int64(0)
	if full() {
		first, err := billStream(t, srv, key, q, pcm, true)
		if first.requestID == "" {
			t.Fatal(err)
		}
		stream, want = first.requestID, 2000
		time.Sleep(billing.ResumeWindow + 5*time.Second)
	}
	rq := url.Values{"encoding": {"linear16"}, "sample_rate": {"16000"}, "resume": {stream}, "resume_offset_ms": {"0"}}
	if _, err := billStream(t, srv, key, rq, pcm, false); err == nil || !strings.Contains(err.Error(), "HTTP 400") {
		t.Fatalf("resume of %s: %v, want HTTP 400", stream, err)
	}
	if got := billedTotal(t, store, "latecomer", want); got != want {
		t.Fatalf("billed %d ms, want %d", got, want)
	}
}

// F9: multichannel=true with N channels for 4 s is billed per channel (N × 4 000 ms),
// as Deepgram does; before it was billed 4 000 ms. F9b: its CloseStream ends with a
// Metadata and close 1000; before, channel 0's end ended the session with Error
// INTERNAL and close 1011.
func TestF9MultichannelBilledPerChannelAndClosesCleanly(t *testing.T) {
	attack(t, "F9", "multichannel=true with several channels for 4 s, then CloseStream",
		"billed channels × 4 000 ms exactly; Metadata and close 1000, no Error")
	testdata.Model(t, "tiny.en")
	channels := pick(2, 8)
	srv := testutil.StartServe(t, "--max-sessions", "8")
	store, key := billTenant(t, srv, "octo")
	mono := billPCM(t, 4)
	inter := make([]byte, 0, len(mono)*channels)
	for i := 0; i < len(mono); i += 2 {
		for range channels {
			inter = append(inter, mono[i], mono[i+1])
		}
	}
	q := url.Values{"encoding": {"linear16"}, "sample_rate": {"16000"}, "channels": {fmt.Sprint(channels)}, "multichannel": {"true"}}
	res, err := billStream(t, srv, key, q, inter, false)
	if err != nil {
		t.Fatalf("multichannel stream: %+v, %v", res, err)
	}
	if res.closeCode != websocket.CloseNormalClosure || !res.metadata || len(res.errors) > 0 {
		t.Errorf("multichannel CloseStream: close %d, metadata %v, errors %q; want 1000, a Metadata, no Error", res.closeCode, res.metadata, res.errors)
	}
	want := int64(channels) * 4000
	if got := billedTotal(t, store, "octo", want); got != want {
		t.Fatalf("billed %d ms for %d channels × 4 000 ms, want %d", got, channels, want)
	}
}
