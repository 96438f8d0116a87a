package chaos

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/billing"
	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/gateway/client"
)

// TestQuotaAcrossGateways: a prepaid tenant whose balance covers 50 s of audio opens
// four streams of 24 s each, two on each of two gateway processes, through the public
// API. Together they are served the 50 s the balance covers and no more: every stream
// that was let in ends with error INSUFFICIENT_BALANCE and close 4002 (after the finals of what
// it sent), or is refused 402 at the start when its siblings already hold what is left;
// the ledger bills every accepted ms, the balance ends at ≥ 0, and a fifth stream is
// refused. Before (a recheck every 30 s per stream, per gateway): 4 × 24 s = 96 s
// served on a balance worth 50 s.
func TestQuotaAcrossGateways(t *testing.T) {
	c := newCluster(t, 1)
	ws2 := c.startSecondGateway()
	ctx := context.Background()
	rdb := c.redis.Client()
	store := billing.NewStore(rdb, billing.DefaultPlans(), nil)
	if _, err := store.CreateTenant(ctx, "prepaid", "payg"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.TopUp(ctx, "prepaid", 1); err != nil { // 1 cent at 72 cents/h = 50 s
		t.Fatal(err)
	}
	_, key, err := gateway.NewKeyStore(rdb).Create(ctx, "prepaid")
	if err != nil {
		t.Fatal(err)
	}
	one, _ := jfk(t)
	pcm := append(append([]byte{}, one...), one...) // 24 s

	is402 := func(err error) bool {
		var de *client.DialError
		return errors.As(err, &de) && de.Status == 402
	}
	urls := []string{c.wsURL(), ws2, c.wsURL(), ws2}
	outs := make([]outcome, len(urls))
	refused := make([]bool, len(urls))
	var wg sync.WaitGroup
	for i, url := range urls {
		conn, err := dialStream(url, key, false)
		if is402(err) {
			refused[i] = true
			continue
		}
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); outs[i] = streamOn(conn, pcm, "", false) }()
		time.Sleep(150 * time.Millisecond)
	}
	wg.Wait()
	var accepted int64
	for i, o := range outs {
		if refused[i] {
			t.Logf("stream %d (%s): refused 402 at the start", i, urls[i])
			continue
		}
		t.Logf("stream %d (%s): accepted %d ms of %d ms, errors %q", i, urls[i], o.AcceptedMs, o.SentMs, o.Errors)
		accepted += o.AcceptedMs
		if len(o.Errors) != 2 || o.Metadata != 1 || !strings.Contains(strings.Join(o.Errors, " "), "INSUFFICIENT_BALANCE") ||
			!strings.Contains(strings.Join(o.Errors, " "), "4002") || len(o.Finals) == 0 {
			t.Errorf("stream %d: want its finals, then INSUFFICIENT_BALANCE and close 4002 with Metadata: %s", i, o)
		}
	}
	if accepted > 50000 || accepted < 45000 {
		t.Fatalf("the streams were served %d ms together; the balance covers 50000 ms", accepted)
	}
	if billed := c.waitBilled(key, accepted, 20*time.Second); billed != accepted {
		t.Fatalf("billed %d ms, accepted %d ms", billed, accepted)
	}
	tn, err := store.Get(ctx, "prepaid")
	if err != nil {
		t.Fatal(err)
	}
	if tn.BalanceU < 0 {
		t.Fatalf("balance %d u after %d ms: the tenant was served past its balance", tn.BalanceU, accepted)
	}
	if _, err := dialStream(ws2, key, false); !is402(err) {
		t.Fatalf("a fifth stream after the balance was used: %v, want HTTP 402", err)
	}
	t.Logf("served %d ms of a balance worth 50000 ms across two gateways; billed the same; %d u left", accepted, tn.BalanceU)
}
