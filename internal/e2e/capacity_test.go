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
// --threads, --slots or --max-sessions decodes with the threads and slots whose knee
// `earshot bench --serve` recorded highest for this machine, and admits that many live
// streams: here 1 thread × 2 slots per 2 cores held 2 streams against 1 with the
// default 2 threads, so a third concurrent stream is refused with HTTP 503 (no
// capacity), and accepted once one ends.
func TestServeAdmitsTheMeasuredKnee(t *testing.T) {
	if models.CPUName() == "" {
		t.Skip("this machine's /proc/cpuinfo names no CPU: no knee can be keyed to it")
	}
	path := filepath.Join(t.TempDir(), models.KneeFile)
	defSlots := (&config.Transcriber{}).SlotsFor(runtime.NumCPU())
	for _, shape := range []struct{ threads, slots, streams int }{{config.DefaultThreads, defSlots, 1}, {1, 2 * defSlots, 2}} {
		knee := models.KneeOf(models.HostKey(models.Default, false, shape.threads, shape.slots))
		knee.Streams, knee.RuleFinalMs, knee.Date = shape.streams, 1000, time.Now().UTC().Format(time.RFC3339)
		if err := models.SaveKnee(path, knee); err != nil {
			t.Fatal(err)
		}
	}
	srv := testutil.StartServe(t, "--capacity-file", path)
	for _, want := range []string{"threads and slots from the knees measured on this machine", "max sessions from the knee measured on this machine"} {
		if out := srv.Output(); !strings.Contains(out, want) {
			t.Fatalf("serve did not log %q:\n%s", want, out)
		}
	}
	_, key := tenantWithKey(t, srv, "knee", "team", nil)
	ctx := context.Background()
	opts := client.Options{Key: key, Encoding: "linear16", SampleRate: 16000}
	var open []*client.Conn
	for i := range 2 {
		c, err := client.Dial(ctx, srv.WSURL, opts)
		if err != nil {
			t.Fatalf("stream %d of the knee's 2: %v", i+1, err)
		}
		open = append(open, c)
	}
	// The worker's heartbeat tells the gateway it is full; until the gateway has seen
	// it, the worker itself refuses: 503 either way.
	var de *client.DialError
	if _, err := client.Dial(ctx, srv.WSURL, opts); !errors.As(err, &de) || de.Status != 503 {
		t.Fatalf("third stream: %v, want HTTP 503 (no capacity: the knee is 2)", err)
	}
	_ = open[0].CloseStream()
	open[0].Close()
	defer open[1].Close()
	testutil.Eventually(t, 15*time.Second, "a stream admitted again once one ended", func() bool {
		c, err := client.Dial(ctx, srv.WSURL, opts)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}
