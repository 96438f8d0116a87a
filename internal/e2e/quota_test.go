package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/billing"
	"github.com/earshot-dev/earshot/gateway/client"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// TestQuotaCutsLiveStream: a tenant whose prepaid balance buys exactly 10 s of audio
// streams a 60 s recording in real time through the public API. The gateway ends the
// stream within 5 s of the 10 s mark with the quota message (close 4002), the tenant is
// billed 10 s plus at most the cut delay, and a new stream is refused with 402.
func TestQuotaCutsLiveStream(t *testing.T) {
	testdata.Model(t, "tiny.en")
	plans := filepath.Join(t.TempDir(), "plans.json")
	// 3600 cents per audio hour = 1 cent per second, billed per millisecond.
	if err := os.WriteFile(plans, []byte(`{"plans":[{"id":"cent-per-second","version":1,"kind":"payg","currency":"USD","price_per_hour_minor":3600},{"id":"demo","version":1,"kind":"monthly","currency":"USD","included_hours":1}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := testutil.StartServe(t, "--plans", plans)
	ctx := context.Background()
	store, key := tenantWithKey(t, srv, "tenpenny", "cent-per-second", mustPlans(t, plans))
	if _, err := store.TopUp(ctx, "tenpenny", 10); err != nil { // 10 cents = 10 s
		t.Fatal(err)
	}
	// 60 s of speech: the longform file's first 60 s.
	pcm := speechPCM(t, "longform_dev.wav")[:60*16000*2]

	conn, err := client.Dial(ctx, srv.WSURL, client.Options{Key: key, Model: "tiny.en", Encoding: "linear16", SampleRate: 16000, InterimResults: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	var quotaMsg string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range conn.Events() {
			if ev.Error != nil {
				quotaMsg = string(ev.Error.Code) + ": " + ev.Error.Description
			}
		}
	}()
	sent := 0
	for off := 0; off < len(pcm); off += 3200 {
		if err := conn.SendAudio(pcm[off:min(off+3200, len(pcm))]); err != nil {
			break
		}
		sent = off + 3200
		time.Sleep(time.Until(start.Add(time.Duration(sent/32) * time.Millisecond)))
		select {
		case <-done:
			off = len(pcm)
		default:
		}
	}
	<-done
	cutAt := time.Duration(sent/32) * time.Millisecond
	var ce *client.CloseError
	if !errors.As(conn.Err(), &ce) || ce.Code != 4002 {
		t.Fatalf("stream ended with %v after %v of audio, want close 4002 (quota)", conn.Err(), cutAt)
	}
	if cutAt < 10*time.Second || cutAt > 15*time.Second {
		t.Errorf("stream cut after %v of audio, want within 5 s of the 10 s mark", cutAt)
	}
	if quotaMsg == "" {
		t.Errorf("no error message naming the reason before the close")
	}
	t.Logf("cut after %v of audio; message %q", cutAt, quotaMsg)

	// Billing settles: billed = accepted audio, between 10 s and the cut.
	var billed int64
	testutil.Eventually(t, 20*time.Second, "usage of the cut stream applied", func() bool {
		m, err := store.MonthUsage(ctx, "tenpenny", time.Now().UTC().Format("2006-01"))
		if err != nil {
			return false
		}
		billed = m["tiny.en"]
		return billed >= 10_000
	})
	if billed > cutAt.Milliseconds()+200 {
		t.Errorf("billed %d ms for %v of audio sent", billed, cutAt)
	}
	t.Logf("billed %d ms", billed)

	// A new stream is refused before the upgrade.
	_, err = client.Dial(ctx, srv.WSURL, client.Options{Key: key, Model: "tiny.en", Encoding: "linear16", SampleRate: 16000})
	var de *client.DialError
	if !errors.As(err, &de) || de.Status != 402 {
		t.Fatalf("new stream after exhaustion: %v, want HTTP 402", err)
	}
}

func mustPlans(t *testing.T, path string) *billing.Plans {
	t.Helper()
	p, err := billing.LoadPlans(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFileWaitsForLiveHolds: a prepaid tenant whose balance covers 50 s holds 10 s of it
// with a live stream; a 45 s file is refused 402 (the ledger alone would admit it: before,
// files and streams in flight were not summed), and a 5 s file passes.
func TestFileWaitsForLiveHolds(t *testing.T) {
	testdata.Model(t, "tiny.en")
	srv := testutil.StartServe(t)
	ctx := context.Background()
	store, key := tenantWithKey(t, srv, "fifty", "payg", nil)
	if _, err := store.TopUp(ctx, "fifty", 1); err != nil { // 1 cent at 72 cents/h = 50 s
		t.Fatal(err)
	}
	conn, err := client.Dial(ctx, srv.WSURL, client.Options{Key: key, Encoding: "linear16", SampleRate: 16000})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SendAudio(make([]byte, 3200)); err != nil {
		t.Fatal(err)
	}
	pcm := speechPCM(t, "longform_dev.wav")
	post := func(seconds int) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/listen?encoding=linear16&sample_rate=16000",
			bytes.NewReader(pcm[:seconds*32000]))
		req.Header.Set("Authorization", "Token "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(45); code != http.StatusPaymentRequired || !strings.Contains(body, "in flight") {
		t.Fatalf("a 45 s file while a live stream holds 10 s of a 50 s balance: %d %s, want 402 naming what is in flight", code, body)
	}
	if code, body := post(5); code != http.StatusOK {
		t.Fatalf("a 5 s file: %d %s", code, body)
	}
}
