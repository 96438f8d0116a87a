package privacy

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/earshot-dev/earshot/internal/testutil"
)

// EraseObject on an object store made by nats.go with default settings (as the
// pre-recorded queue makes its upload bucket): the object is gone, and so are its bytes
// on disk; another object in the same bucket is untouched.
func TestEraseObjectFromDisk(t *testing.T) {
	srv := testutil.NATS(t)
	js, err := jetstream.New(testutil.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "UPLOADS", TTL: time.Hour, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte("uploaded-audio-bytes-7f3a9c "), 4000) // > one 128 kB chunk
	other := bytes.Repeat([]byte("neighbour-object-5d21 "), 100)
	if _, err := obs.PutBytes(ctx, "acme/req-1", secret); err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(ctx, "acme/req-2", other); err != nil {
		t.Fatal(err)
	}
	needle := []byte("uploaded-audio-bytes-7f3a9c")
	testutil.Eventually(t, 10*time.Second, "the upload on disk", func() bool { return len(testutil.FilesContaining(t, srv.StoreDir(), needle)) > 0 })

	live, err := EraseObject(ctx, js, obs, "UPLOADS", "acme/req-1")
	if err != nil || !live {
		t.Fatalf("EraseObject = %v, %v; want true, nil", live, err)
	}
	if _, err := obs.GetInfo(ctx, "acme/req-1", jetstream.GetObjectInfoShowDeleted()); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Fatalf("GetInfo after erase: %v, want ErrObjectNotFound", err)
	}
	if files := testutil.FilesContaining(t, srv.StoreDir(), needle); len(files) > 0 {
		t.Fatalf("erased object still on disk in %v", files)
	}
	if b, err := obs.GetBytes(ctx, "acme/req-2"); err != nil || !bytes.Equal(b, other) {
		t.Fatalf("neighbour object: %v", err)
	}
	if live, err := EraseObject(ctx, js, obs, "UPLOADS", "acme/req-1"); err != nil || live {
		t.Fatalf("second EraseObject = %v, %v; want false, nil", live, err)
	}
}
