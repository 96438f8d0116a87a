package privacy

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testutil"
)

func openStore(t *testing.T) (*Store, jetstream.JetStream) {
	t.Helper()
	nc := testutil.Connect(t, testutil.NATS(t))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), Config{JS: js})
	if err != nil {
		t.Fatal(err)
	}
	return s, js
}

func TestKeepGetDeleteAcrossTenants(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	req := bus.NewSessionID()
	p := Policy{Retain: RetainAudio, TTL: time.Hour}
	if err := s.Keep(ctx, "acme", req, p, []byte(`{"transcript":"hello"}`), bytes.NewReader([]byte("RIFFaudio"))); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Get(ctx, "acme", req)
	if err != nil || string(rec.Response) != `{"transcript":"hello"}` || !rec.HasAudio {
		t.Fatalf("get: %+v %v", rec, err)
	}
	if a, err := s.Audio(ctx, "acme", req); err != nil || string(a) != "RIFFaudio" {
		t.Fatalf("audio %q %v", a, err)
	}
	if _, err := s.Get(ctx, "other", req); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another tenant read it: %v", err)
	}
	if err := s.Delete(ctx, "other", req, "key:x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another tenant deleted it: %v", err)
	}
	if err := s.Delete(ctx, "acme", req, "key:k1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "acme", req); !errors.Is(err, ErrNotFound) {
		t.Fatalf("still there after delete: %v", err)
	}
	if _, err := s.Audio(ctx, "acme", req); !errors.Is(err, ErrNotFound) {
		t.Fatalf("audio still there after delete: %v", err)
	}
	log, err := s.AuditLog(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 || log[0].Action != ActionRetained || log[1].Action != ActionDeleted ||
		log[1].Actor != "key:k1" || log[1].Target != string(req) {
		t.Fatalf("audit log %+v", log)
	}
	if other, _ := s.AuditLog(ctx, "other"); len(other) != 0 {
		t.Fatalf("other tenant's audit log %+v", other)
	}
}

func TestRetainedTranscriptExpires(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, _ := openStore(t)
	s.sweepEvery = 100 * time.Millisecond // Run, not the server's TTL, removes it
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	req := bus.NewSessionID()
	if err := s.Keep(ctx, "acme", req, Policy{Retain: RetainTranscript, TTL: time.Second}, []byte(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "acme", req); err != nil {
		t.Fatalf("not kept: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, "retained transcript to expire", func() bool {
		_, err := s.kv.Get(ctx, recKey("acme", req)) // the bucket itself, not just Get's clock check
		return errors.Is(err, jetstream.ErrKeyNotFound)
	})
}

func TestEraseTenant(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	var erased []bus.TenantID
	s.OnErase("jobs", func(_ context.Context, t bus.TenantID) error { erased = append(erased, t); return nil })
	if err := s.SetPolicy(ctx, "acme", Policy{Retain: RetainTranscript, TTL: time.Hour}, "admin"); err != nil {
		t.Fatal(err)
	}
	a1, a2, b1 := bus.NewSessionID(), bus.NewSessionID(), bus.NewSessionID()
	for _, k := range []struct {
		t bus.TenantID
		r bus.SessionID
	}{{"acme", a1}, {"acme", a2}, {"beta", b1}} {
		if err := s.Keep(ctx, k.t, k.r, Policy{Retain: RetainAudio}, []byte(`{}`), bytes.NewReader([]byte("pcm"))); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.EraseTenant(ctx, "acme", "cli")
	if err != nil || n.Transcripts != 2 || n.Audio != 2 {
		t.Fatalf("erase: %+v %v", n, err)
	}
	for _, r := range []bus.SessionID{a1, a2} {
		if _, err := s.Get(ctx, "acme", r); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s survived erase: %v", r, err)
		}
	}
	if _, err := s.Get(ctx, "beta", b1); err != nil {
		t.Fatalf("erase of acme removed beta's data: %v", err)
	}
	if p, _ := s.Policy(ctx, "acme"); p.Keeps() {
		t.Fatalf("policy survived erase: %+v", p)
	}
	if len(erased) != 1 || erased[0] != "acme" {
		t.Fatalf("erasers called with %v", erased)
	}
	log, _ := s.AuditLog(ctx, "acme")
	if len(log) == 0 || log[0].Action != ActionPolicySet || log[len(log)-1].Action != ActionErased {
		t.Fatalf("audit log %+v", log)
	}
}

func TestAuditLogIsAppendOnly(t *testing.T) {
	ctx := context.Background()
	s, js := openStore(t)
	if err := s.Audit(ctx, Entry{Actor: "admin", Action: "key.created", Tenant: "acme", Target: "k1"}); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, bus.AuditStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(ctx, 1); err == nil {
		t.Fatal("deleting an audit entry succeeded")
	}
	if err := st.Purge(ctx); err == nil {
		t.Fatal("purging the audit stream succeeded")
	}
	if err := s.Audit(ctx, Entry{Action: "x", Tenant: "a.b"}); !errors.Is(err, ErrBadTenant) {
		t.Fatalf("tenant with a dot: %v", err)
	}
}

func TestParseRetention(t *testing.T) {
	cases := []struct {
		q      string
		want   Policy
		set    bool
		wantOK bool
	}{
		{"", Policy{}, false, true},
		{"retain=transcript", Policy{RetainTranscript, DefaultTTL}, true, true},
		{"retain=audio&retain_ttl=90m", Policy{RetainAudio, 90 * time.Minute}, true, true},
		{"retain=none", Policy{}, true, true},
		{"retain=everything", Policy{}, false, false},
		{"retain=transcript&retain_ttl=0.5s", Policy{}, false, false},
		{"retain=transcript&retain_ttl=9999h", Policy{}, false, false},
		{"retain=transcript&retain_ttl=soon", Policy{}, false, false},
		{"retain_ttl=1h", Policy{}, false, false},
		{"retain=audio&retain=audio", Policy{}, false, false},
	}
	for _, c := range cases {
		q, _ := url.ParseQuery(c.q)
		p, set, err := ParseRetention(q)
		if (err == nil) != c.wantOK || p != c.want || set != c.set {
			t.Errorf("ParseRetention(%q) = %+v %v %v", c.q, p, set, err)
		}
		if err != nil && !errors.Is(err, ErrBadRetention) {
			t.Errorf("%q: %v does not wrap ErrBadRetention", c.q, err)
		}
	}
}
