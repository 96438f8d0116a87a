package abuse

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/earshot-dev/earshot/billing"
	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// newTenant creates tenant on plan (a built-in one) in srv's Redis, tops its prepaid
// balance up by cents (0: none), and returns its billing store and a new API key (id
// and secret).
func newTenant(t *testing.T, srv *testutil.Serve, tenant bus.TenantID, plan string, cents int64) (*billing.Store, bus.KeyID, string) {
	t.Helper()
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Redis.Addr})
	t.Cleanup(func() { rdb.Close() })
	store := billing.NewStore(rdb, billing.DefaultPlans(), nil)
	if _, err := store.CreateTenant(ctx, tenant, plan); err != nil {
		t.Fatal(err)
	}
	if cents > 0 {
		if _, err := store.TopUp(ctx, tenant, cents); err != nil {
			t.Fatal(err)
		}
	}
	k, key, err := gateway.NewKeyStore(rdb).Create(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	return store, k.ID, key
}

// speechWAV reads a 16 kHz recording of the shared test data as WAV bytes.
func speechWAV(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata.Require(t), "speech", "wav16k", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
