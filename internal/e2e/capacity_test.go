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

// TestServeAdmitsTheMeasuredKnee: `earshot serve --models tiny.en,tiny.en-q8_0` (real
// whisper, NATS, Redis) without --threads, --slots or --max-sessions decodes with the
// threads and slots whose knee `earshot bench --serve` recorded highest for its first
// model on this machine, and admits as many live streams as the knees say, the two
// models sharing the machine: here 1 thread × 2 slots per 2 cores held 2 streams of
// each model (against 1 of tiny.en with the default 2 threads), so one stream of each
// fills it, a third of either model is refused with HTTP 503 (no capacity), and one is
// accepted again once a stream ends.
func TestServeAdmitsTheMeasuredKnee(t *testing.T) {
	if models.CPUName() == "" {
		t.Skip("this machine's /proc/cpuinfo names no CPU: no knee can be keyed to it")
	}
	const q8 = models.Default + "-q8_0"
	path := filepath.Join(t.TempDir(), models.KneeFile)
	defSlots := (&config.Transcriber{}).SlotsFor(runtime.NumCPU())
	for _, k := range []struct {
		model                   string
		threads, slots, streams int
	}{{models.Default, config.DefaultThreads, defSlots, 1}, {models.Default, 1, defSlots, 2}, {q8, 1, defSlots, 2}} {
		knee := models.KneeOf(models.HostKey(k.model, false, k.threads, k.slots))
		knee.Streams, knee.RuleFinalMs, knee.Date = k.streams, 1000, time.Now().UTC().Format(time.RFC3339)
		if err := models.SaveKnee(path, knee); err != nil {
			t.Fatal(err)
		}
	}
	srv := testutil.StartServe(t, "--capacity-file", path, "--models", models.Default+","+q8)
	for _, want := range []string{"threads and slots from the knees measured on this machine",
		"max sessions from the knee measured on this machine", "models with measured knees share this machine"} {
		if out := srv.Output(); !strings.Contains(out, want) {
			t.Fatalf("serve did not log %q:\n%s", want, out)
		}
	}
	_, key := tenantWithKey(t, srv, "knee", "team", nil)
	ctx := context.Background()
	opts := func(model string) client.Options {
		return client.Options{Key: key, Encoding: "linear16", SampleRate: 16000, Model: model}
	}
	var open []*client.Conn
	for _, m := range []string{models.Default, q8} {
		c, err := client.Dial(ctx, srv.WSURL, opts(m))
		if err != nil {
			t.Fatalf("a %s stream, half the machine: %v", m, err)
		}
		open = append(open, c)
	}
	// The worker's heartbeat tells the gateway it is full; until the gateway has seen
	// it, the worker itself refuses: 503 either way.
	for _, m := range []string{models.Default, q8} {
		var de *client.DialError
		if _, err := client.Dial(ctx, srv.WSURL, opts(m)); !errors.As(err, &de) || de.Status != 503 {
			t.Fatalf("a third stream (%s): %v, want HTTP 503 (no capacity: the two streams fill the machine)", m, err)
		}
	}
	_ = open[0].CloseStream()
	open[0].Close()
	defer open[1].Close()
	testutil.Eventually(t, 15*time.Second, "a stream admitted again once one ended", func() bool {
		c, err := client.Dial(ctx, srv.WSURL, opts(q8))
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}
