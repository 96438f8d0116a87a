package e2e

import (
	"bytes"
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
	return ingest.PCM16Bytes(fileSamples(t, path))
}

// fileSamples reads a WAV file as 16 kHz mono samples.
func fileSamples(t *testing.T, path string) []float32 {
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
	return ingest.Convert16kMono(format, chans)
}

// manifestItem returns the WAV path and reference transcript of a speech manifest item.
func manifestItem(t *testing.T, id string) (wav, reference string) {
	t.Helper()
	items, err := testdata.LoadManifest(filepath.Join(testdata.Require(t), testdata.SpeechManifest))
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.ID == id {
			return it.WAV, it.Reference
		}
	}
	t.Fatalf("%s not in the speech manifest", id)
	return "", ""
}

// jfkThenSilence writes JFK's sentence and two seconds of silence, in which a turn
// ends (eot_timeout_ms), as a 16 kHz mono WAV file in a temporary directory. It
// returns the file, JFK's reference transcript and the number of samples.
func jfkThenSilence(t *testing.T) (path, reference string, samples int) {
	t.Helper()
	jfk, ref := manifestItem(t, jfkID)
	pcm := append(fileSamples(t, jfk), make([]float32, 2*16000)...)
	var wav bytes.Buffer
	if err := ingest.WriteWAV16(&wav, 16000, pcm); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "jfk-then-silence.wav")
	if err := os.WriteFile(path, wav.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, ref, len(pcm)
}
