package e2e

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/gateway/client"
	"github.com/earshot-dev/earshot/internal/config"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/earshot-dev/earshot/models"
)

// TestServeAdmitsTheMeasuredKnee: `earshot serve` (real whisper, NATS, Redis) without
// --max-sessions admits as many live streams of a model as the knee `earshot bench
// --serve` recorded for this machine in the capacity file: here a knee of 1, so a
// second concurrent stream is refused with HTTP 503 (no capacity), and accepted once
// the first ends.
func TestServeAdmitsTheMeasuredKnee(t *testing.T) {
	if models.CPUName() == "" {
		t.Skip("this machine's /proc/cpuinfo names no CPU: no knee can be keyed to it")
	}
	path := filepath.Join(t.TempDir(), models.KneeFile)
	slots := (&config.Transcriber{Threads: 2}).SlotsFor(runtime.NumCPU())
	knee := models.KneeOf(models.HostKey(models.Default, false, 2, slots))
	knee.Streams, knee.RuleFinalMs, knee.Date = 1, 1000, time.Now().UTC().Format(time.RFC3339)
	if err := models.SaveKnee(path, knee); err != nil {
		t.Fatal(err)
	}
	srv := testutil.StartServe(t, "--capacity-file", path, "--threads", "2")
	if out := srv.Output(); !strings.Contains(out, "max sessions from the knee measured on this machine") {
		t.Fatalf("serve did not log the knee it took:\n%s", out)
	}
	_, key1 := tenantWithKey(t, srv, "knee", "team", nil)
	ctx := context.Background()
	opts := client.Options{Key: key1, Encoding: "linear16", SampleRate: 16000}
	first, err := client.Dial(ctx, srv.WSURL, opts)
	if err != nil {
		t.Fatalf("first stream: %v", err)
	}
	// The worker's heartbeat tells the gateway it is full; until the gateway has seen
	// it, the worker itself refuses: 503 either way.
	var de *client.DialError
	if _, err = client.Dial(ctx, srv.WSURL, opts); !errors.As(err, &de) || de.Status != 503 {
		t.Fatalf("second stream: %v, want HTTP 503 (no capacity: the knee is 1)", err)
	}
	_ = first.CloseStream()
	first.Close()
	testutil.Eventually(t, 15*time.Second, "a stream admitted again once the first ended", func() bool {
		c, err := client.Dial(ctx, srv.WSURL, opts)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}
