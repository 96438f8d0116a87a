package privacy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
)

// diskStore is a Store on an embedded NATS whose JetStream files are under dir.
type diskStore struct {
	*Store
	js  jetstream.JetStream
	dir string
}

func openDiskStore(t *testing.T, cfg Config) diskStore {
	t.Helper()
	srv := testutil.NATS(t)
	js, err := jetstream.New(testutil.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	cfg.JS = js
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return diskStore{s, js, srv.StoreDir()}
}

// secret is one retained request with words and audio that occur nowhere else.
type secret struct {
	tenant bus.TenantID
	req    bus.SessionID
	words  []byte
	audio  []byte
}

func newSecret(tenant bus.TenantID, words string) secret {
	return secret{tenant: tenant, req: bus.NewSessionID(), words: []byte(words),
		audio: bytes.Repeat([]byte("PCM<"+strings.ToUpper(words)+">"), 64)}
}

func (x secret) keep(t *testing.T, s *Store, p Policy) {
	t.Helper()
	resp, _ := json.Marshal(map[string]string{"transcript": string(x.words)})
	if err := s.Keep(context.Background(), x.tenant, x.req, p, resp, bytes.NewReader(x.audio)); err != nil {
		t.Fatal(err)
	}
}

// mustBeOnDisk waits until the store has flushed x to its block files: it proves the
// scan sees what it looks for.
func (x secret) mustBeOnDisk(t *testing.T, dir string, audio bool) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, "the retained words in the block files", func() bool {
		return len(testutil.FilesContaining(t, dir, x.words)) > 0
	})
	if audio {
		testutil.Eventually(t, 5*time.Second, "the retained audio in the block files", func() bool {
			return len(testutil.FilesContaining(t, dir, x.audio[:64])) > 0
		})
	}
}

func (x secret) mustBeGone(t *testing.T, dir string) {
	t.Helper()
	if f := testutil.FilesContaining(t, dir, x.words); len(f) > 0 {
		t.Errorf("words %q still on disk in %v", x.words, f)
	}
	if f := testutil.FilesContaining(t, dir, x.audio[:64]); len(f) > 0 {
		t.Errorf("audio of %q still on disk in %v", x.words, f)
	}
}

func TestDeleteErasesFromDisk(t *testing.T) {
	ctx := context.Background()
	s := openDiskStore(t, Config{})
	gone := newSecret("acme", "violet quokka sings at seven")
	kept := newSecret("acme", "amber heron waits till noon")
	gone.keep(t, s.Store, Policy{Retain: RetainAudio, TTL: time.Hour})
	kept.keep(t, s.Store, Policy{Retain: RetainAudio, TTL: time.Hour}) // same block files, after it
	gone.mustBeOnDisk(t, s.dir, true)
	kept.mustBeOnDisk(t, s.dir, true)

	if err := s.Delete(ctx, gone.tenant, gone.req, "key:k1"); err != nil {
		t.Fatal(err)
	}
	gone.mustBeGone(t, s.dir)
	if _, err := s.Get(ctx, gone.tenant, gone.req); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := s.Delete(ctx, gone.tenant, gone.req, "key:k1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	// The neighbour, in the same block files, is untouched: the blocks were not simply
	// removed, and the scan still sees what is there.
	kept.mustBeOnDisk(t, s.dir, true)
	if a, err := s.Audio(ctx, kept.tenant, kept.req); err != nil || !bytes.Equal(a, kept.audio) {
		t.Fatalf("neighbour's audio: %d bytes, %v", len(a), err)
	}
	if rec, err := s.Get(ctx, kept.tenant, kept.req); err != nil || !bytes.Contains(rec.Response, kept.words) {
		t.Fatalf("neighbour's record: %+v %v", rec, err)
	}
	// The bucket can take the same key again.
	gone.keep(t, s.Store, Policy{Retain: RetainTranscript, TTL: time.Hour})
	if _, err := s.Get(ctx, gone.tenant, gone.req); err != nil {
		t.Fatalf("keep again after delete: %v", err)
	}

	// Deleted before the store flushed it to its block file: it is never written in
	// clear. The next record reaching the disk shows that the writes have been flushed.
	early := newSecret("acme", "teal jackal leaves at dawn")
	early.keep(t, s.Store, Policy{Retain: RetainAudio, TTL: time.Hour})
	if err := s.Delete(ctx, early.tenant, early.req, "key:k1"); err != nil {
		t.Fatal(err)
	}
	after := newSecret("acme", "ochre ibis arrives at dusk")
	after.keep(t, s.Store, Policy{Retain: RetainAudio, TTL: time.Hour})
	after.mustBeOnDisk(t, s.dir, true)
	early.mustBeGone(t, s.dir)
}

func TestEraseTenantErasesFromDisk(t *testing.T) {
	ctx := context.Background()
	s := openDiskStore(t, Config{})
	a1 := newSecret("acme", "crimson walrus hums the anthem")
	a2 := newSecret("acme", "silver badger counts backwards")
	b1 := newSecret("beta", "golden lynx reads the ledger")
	a1.keep(t, s.Store, Policy{Retain: RetainAudio, TTL: time.Hour})
	b1.keep(t, s.Store, Policy{Retain: RetainAudio, TTL: time.Hour})
	a2.keep(t, s.Store, Policy{Retain: RetainTranscript, TTL: time.Hour})
	a1.mustBeOnDisk(t, s.dir, true)
	a2.mustBeOnDisk(t, s.dir, false)
	b1.mustBeOnDisk(t, s.dir, true)
	// A request deleted earlier leaves nothing either.
	if err := s.Delete(ctx, a2.tenant, a2.req, "key:k1"); err != nil {
		t.Fatal(err)
	}
	a2.keep(t, s.Store, Policy{Retain: RetainTranscript, TTL: time.Hour})

	n, err := s.EraseTenant(ctx, "acme", "cli")
	if err != nil || n.Transcripts != 2 || n.Audio != 1 {
		t.Fatalf("erase: %+v %v", n, err)
	}
	a1.mustBeGone(t, s.dir)
	a2.mustBeGone(t, s.dir)
	b1.mustBeOnDisk(t, s.dir, true)
	if _, err := s.Get(ctx, "beta", b1.req); err != nil {
		t.Fatalf("erase of acme removed beta's data: %v", err)
	}
	if n, err := s.EraseTenant(ctx, "acme", "cli"); err != nil || n != (Erased{}) {
		t.Fatalf("second erase: %+v %v", n, err)
	}
}

func TestExpiryErasesFromDisk(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := openDiskStore(t, Config{SweepEvery: 100 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	short := newSecret("acme", "indigo otter naps by the weir")
	long := newSecret("acme", "scarlet finch hides the keys")
	long.keep(t, s.Store, Policy{Retain: RetainAudio, TTL: time.Hour})
	kept := time.Now()
	short.keep(t, s.Store, Policy{Retain: RetainAudio, TTL: 2 * time.Second})
	short.mustBeOnDisk(t, s.dir, true)
	if _, err := s.Get(ctx, short.tenant, short.req); err != nil {
		t.Fatalf("not kept: %v", err)
	}
	testutil.Eventually(t, 6*time.Second, "the expired record to be erased from disk", func() bool {
		return len(testutil.FilesContaining(t, s.dir, short.words)) == 0 && len(testutil.FilesContaining(t, s.dir, short.audio[:64])) == 0
	})
	if d := time.Since(kept); d < 1900*time.Millisecond {
		t.Fatalf("erased after %v, before its 2 s TTL", d)
	}
	if _, err := s.kv.Get(ctx, recKey(short.tenant, short.req)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("expired key still in the bucket: %v", err)
	}
	if _, err := s.audio.GetInfo(ctx, audioName(short.tenant, short.req)); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Fatalf("expired audio still in the object store: %v", err)
	}
	long.mustBeOnDisk(t, s.dir, true)
	if _, err := s.Get(ctx, long.tenant, long.req); err != nil {
		t.Fatalf("the sweep removed a record that has not expired: %v", err)
	}
	// The server's own TTL, which does not overwrite, comes an hour after the sweep.
	st, err := s.js.Stream(ctx, retainedStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, recSubject(recKey(long.tenant, long.req)))
	if err != nil {
		t.Fatal(err)
	}
	if ttl, ok := parseTTL(m.Header.Get(jetstream.MsgTTLHeader)); !ok || ttl != time.Hour+expiryGrace {
		t.Fatalf("server TTL %q, want %v", m.Header.Get(jetstream.MsgTTLHeader), time.Hour+expiryGrace)
	}
}

// An installation whose RETAINED stream was made by nats.go's CreateKeyValue (message
// deletes denied) is moved to one that allows erasure: records in force survive,
// residue of earlier purges goes with the old block files.
func TestOpenMigratesRetainedStream(t *testing.T) {
	ctx := context.Background()
	srv := testutil.NATS(t)
	js, err := jetstream.New(testutil.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	old, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bus.RetainedBucket, TTL: MaxTTL,
		LimitMarkerTTL: time.Second, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	put := func(x secret, expires time.Time) {
		t.Helper()
		resp, _ := json.Marshal(map[string]string{"transcript": string(x.words)})
		b, _ := json.Marshal(Record{Request: x.req, Tenant: x.tenant, Created: now, Expires: expires,
			Retain: RetainTranscript, Response: resp})
		if _, err := old.Create(ctx, recKey(x.tenant, x.req), b, jetstream.KeyTTL(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	live := newSecret("acme", "olive gecko climbs the tower")
	purged := newSecret("acme", "cobalt mole digs under vaults")
	expired := newSecret("acme", "rusty crane forgets the date")
	put(purged, now.Add(time.Hour))
	put(live, now.Add(time.Hour))
	put(expired, now.Add(-time.Second))
	if err := old.Purge(ctx, recKey(purged.tenant, purged.req)); err != nil {
		t.Fatal(err)
	}
	purged.mustBeOnDisk(t, srv.StoreDir(), false) // the defect: a purge leaves the bytes

	s, err := Open(ctx, Config{JS: js})
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.kvStream.Info(ctx); err != nil || info.Config.DenyDelete {
		t.Fatalf("stream after Open: deny delete=%v, %v", info != nil && info.Config.DenyDelete, err)
	}
	purged.mustBeGone(t, srv.StoreDir())
	expired.mustBeGone(t, srv.StoreDir())
	rec, err := s.Get(ctx, live.tenant, live.req)
	if err != nil || !bytes.Contains(rec.Response, live.words) || !rec.Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("live record after migration: %+v %v", rec, err)
	}
	if err := s.Delete(ctx, live.tenant, live.req, "key:k1"); err != nil {
		t.Fatal(err)
	}
	live.mustBeGone(t, srv.StoreDir())
	// A second Open leaves the new stream as it is.
	if _, err := Open(ctx, Config{JS: js}); err != nil {
		t.Fatal(err)
	}
}

func TestServerTTL(t *testing.T) {
	for _, c := range []struct{ in, want time.Duration }{
		{time.Second, time.Second + expiryGrace},
		{1500 * time.Millisecond, 2*time.Second + expiryGrace},
		{MaxTTL, MaxTTL + expiryGrace},
	} {
		if got := serverTTL(c.in); got != c.want {
			t.Errorf("serverTTL(%v) = %v, want %v", c.in, got, c.want)
		}
		if got, ok := parseTTL(serverTTL(c.in).String()); !ok || got != c.want {
			t.Errorf("parseTTL(%q) = %v %v", serverTTL(c.in).String(), got, ok)
		}
	}
}
