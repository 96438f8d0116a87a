package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/earshot-dev/earshot/billing"
	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// tenantWithKey creates tenant on plan (from plans, or the built-in ones when nil) in
// the server's Redis and returns its billing store and a new API key.
func tenantWithKey(t *testing.T, srv *testutil.Serve, tenant, plan string, plans *billing.Plans) (*billing.Store, string) {
	t.Helper()
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Redis.Addr})
	t.Cleanup(func() { rdb.Close() })
	if plans == nil {
		plans = billing.DefaultPlans()
	}
	store := billing.NewStore(rdb, plans, nil)
	if _, err := store.CreateTenant(ctx, bus.TenantID(tenant), plan); err != nil {
		t.Fatal(err)
	}
	_, key, err := gateway.NewKeyStore(rdb).Create(ctx, bus.TenantID(tenant))
	if err != nil {
		t.Fatal(err)
	}
	return store, key
}

// speechPCM reads a 16 kHz test recording as little-endian PCM16 bytes.
func speechPCM(t *testing.T, name string) []byte {
	t.Helper()
	return filePCM(t, filepath.Join(testdata.Require(t), "speech", "wav16k", name))
}

// filePCM reads a WAV file as 16 kHz mono little-endian PCM16 bytes.
func filePCM(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	format, chans, err := ingest.ReadWAV(f)
	if err != nil {
		t.Fatal(err)
	}
	return ingest.PCM16Bytes(ingest.Convert16kMono(format, chans))
}
