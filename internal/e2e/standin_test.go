package e2e

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/gateway/client"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// TestStandInEngineThroughThePublicAPI: `earshot serve --engine standin` (the stand-in
// transcriber of the scale simulation, scripts/sim.sh) serves 20 concurrent real-time
// streams through the real gateway, NATS and billing: every stream gets placeholder
// finals that tile its audio, and the ledger bills exactly the audio accepted.
func TestStandInEngineThroughThePublicAPI(t *testing.T) {
	srv := testutil.StartServe(t, "--engine", "standin", "--max-sessions", "50", "--max-streams-per-tenant", "50")
	store, key := tenantWithKey(t, srv, "sim", "team", nil)
	const streams = 20
	pcm := make([]byte, 4*32000) // 4 s of silence: the stand-in does not listen
	var wg sync.WaitGroup
	accepted := make([]int64, streams)
	finals := make([]int, streams)
	errs := make([]error, streams)
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := client.Dial(ctx, srv.WSURL, client.Options{Key: key, Encoding: "linear16", SampleRate: 16000})
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close()
			go func() {
				start := time.Now()
				for k := 0; k*3200 < len(pcm); k++ {
					time.Sleep(time.Until(start.Add(time.Duration(k) * 100 * time.Millisecond)))
					if c.SendAudio(pcm[k*3200:(k+1)*3200]) != nil {
						return
					}
				}
				_ = c.CloseStream()
			}()
			var end float64
			for ev := range c.Events() {
				if r := ev.Results; r != nil && r.IsFinal {
					if math.Abs(r.Start-end) > 0.001 || r.Transcript() == "" {
						t.Errorf("stream %d: final at %.3f s (%q), want it to start at %.3f s", i, r.Start, r.Transcript(), end)
					}
					end = r.Start + r.Duration
					finals[i]++
				}
				if ev.Metadata != nil {
					accepted[i] = int64(math.Round(ev.Metadata.Duration * 1000))
				}
			}
			errs[i] = c.Err()
		}()
	}
	wg.Wait()
	var total int64
	for i := range streams {
		if errs[i] != nil || finals[i] < 2 || accepted[i] != 4000 {
			t.Fatalf("stream %d: %d finals, accepted %d ms, err %v", i, finals[i], accepted[i], errs[i])
		}
		total += accepted[i]
	}
	testutil.Eventually(t, 20*time.Second, "billing to catch up", func() bool {
		used, err := store.MonthUsage(context.Background(), bus.TenantID("sim"), time.Now().UTC().Format("2006-01"))
		return err == nil && used["tiny.en"] == total
	})
}
