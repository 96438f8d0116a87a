package privacy

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/earshot-dev/earshot/internal/bus"
)

// The JetStream names this package uses are internal/bus's: bus.RetainedBucket (KV:
// <tenant>.<request> → Record), bus.RetainedAudioBucket (object store:
// <tenant>/<request> → audio as uploaded), bus.RetentionPolicyBucket (KV: <tenant> →
// Policy) and bus.AuditStream (subjects bus.AuditSubject).

// Record is one retained response.
type Record struct {
	Request  bus.SessionID   `json:"request_id"`
	Tenant   bus.TenantID    `json:"tenant"`
	Created  time.Time       `json:"created"`
	Expires  time.Time       `json:"expires"`
	Retain   Retain          `json:"retain"`
	HasAudio bool            `json:"has_audio"`
	Response json.RawMessage `json:"response"`
}

// Eraser removes a tenant's data held elsewhere (queued jobs, request status) when the
// tenant is erased. It must be idempotent.
type Eraser func(ctx context.Context, tenant bus.TenantID) error

// Config configures a Store.
type Config struct {
	JS  jetstream.JetStream
	Log *slog.Logger
	// Replicas of the buckets and the audit stream. Default: as they are, else 1.
	Replicas int
	// SweepEvery is how often Run erases expired records. Default DefaultSweepEvery.
	SweepEvery time.Duration
}

// Store keeps retained transcripts and audio, tenant policies and the audit log.
// Safe for concurrent use.
type Store struct {
	js          jetstream.JetStream
	log         *slog.Logger
	kv          jetstream.KeyValue
	kvStream    jetstream.Stream // the stream of kv, for SecureDeleteMsg
	pol         jetstream.KeyValue
	audio       jetstream.ObjectStore
	audioStream jetstream.Stream // the stream of audio
	audit       jetstream.Stream
	sweepEvery  time.Duration
	now         func() time.Time
	mu          sync.Mutex
	erasers     []namedEraser
}

type namedEraser struct {
	name string
	fn   Eraser
}

// Open creates (or binds to) the buckets and the audit stream.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.JS == nil {
		return nil, errors.New("privacy: Open needs JetStream")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Replicas <= 0 {
		// Unset (the CLI): keep what the services made, so an admin command never
		// scales a clustered store down.
		cfg.Replicas = 1
		if st, err := cfg.JS.Stream(ctx, bus.KVStream(bus.RetainedBucket)); err == nil {
			cfg.Replicas = max(1, st.CachedInfo().Config.Replicas)
		}
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = DefaultSweepEvery
	}
	s := &Store{js: cfg.JS, log: cfg.Log.With("component", "privacy"), now: time.Now, sweepEvery: cfg.SweepEvery}
	if err := s.openRetained(ctx, cfg.Replicas); err != nil {
		return nil, fmt.Errorf("privacy: bucket %s: %w", bus.RetainedBucket, err)
	}
	var err error
	s.pol, err = cfg.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bus.RetentionPolicyBucket, Description: "per-tenant retention policy", History: 1,
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("privacy: bucket %s: %w", bus.RetentionPolicyBucket, err)
	}
	s.audio, err = cfg.JS.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: bus.RetainedAudioBucket, Description: "opt-in retained audio (privacy)",
		TTL: MaxTTL + expiryGrace, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("privacy: object store %s: %w", bus.RetainedAudioBucket, err)
	}
	if s.audioStream, err = cfg.JS.Stream(ctx, audioStream); err != nil {
		return nil, fmt.Errorf("privacy: object store %s: %w", bus.RetainedAudioBucket, err)
	}
	s.audit, err = cfg.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: bus.AuditStream, Description: "append-only audit log of privacy-relevant actions",
		Subjects: []string{bus.AuditWildcard}, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
		Retention: jetstream.LimitsPolicy, DenyDelete: true, DenyPurge: true,
	})
	if err != nil {
		return nil, fmt.Errorf("privacy: stream %s: %w", bus.AuditStream, err)
	}
	return s, nil
}

// OnErase registers fn to run on every EraseTenant (name is for the audit entry).
func (s *Store) OnErase(name string, fn Eraser) {
	s.mu.Lock()
	s.erasers = append(s.erasers, namedEraser{name, fn})
	s.mu.Unlock()
}

var safeKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// KeyPart maps an id to one KV key or object-name token: as is when it is
// [A-Za-z0-9_-]+, else "x" + hex. Every bucket of tenant data keys by it, so erasure can
// find a tenant's entries by prefix.
func KeyPart(s string) string {
	if safeKey.MatchString(s) {
		return s
	}
	return "x" + hex.EncodeToString([]byte(s))
}

func recKey(t bus.TenantID, r bus.SessionID) string {
	return KeyPart(string(t)) + "." + KeyPart(string(r))
}
func audioName(t bus.TenantID, r bus.SessionID) string {
	return KeyPart(string(t)) + "/" + KeyPart(string(r))
}

// Policy returns the tenant's retention policy (RetainNone when never set).
func (s *Store) Policy(ctx context.Context, t bus.TenantID) (Policy, error) {
	e, err := s.pol.Get(ctx, KeyPart(string(t)))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Policy{}, nil
	}
	if err != nil {
		return Policy{}, fmt.Errorf("privacy: policy of %s: %w", t, err)
	}
	var p Policy
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return Policy{}, fmt.Errorf("privacy: policy of %s: %w", t, err)
	}
	return p, nil
}

// SetPolicy sets the tenant's default retention and records it in the audit log.
func (s *Store) SetPolicy(ctx context.Context, t bus.TenantID, p Policy, actor string) error {
	p, err := p.Validate()
	if err != nil {
		return err
	}
	b, _ := json.Marshal(p)
	if _, err := s.pol.Put(ctx, KeyPart(string(t)), b); err != nil {
		return fmt.Errorf("privacy: set policy of %s: %w", t, err)
	}
	target := "retain=none"
	if p.Keeps() {
		target = fmt.Sprintf("retain=%s ttl=%v", p.Retain, p.TTL)
	}
	return s.Audit(ctx, Entry{Actor: actor, Action: ActionPolicySet, Tenant: t, Target: target})
}

// Effective is the policy for one request: the request's own when it set one, else
// the tenant's.
func (s *Store) Effective(ctx context.Context, t bus.TenantID, req Policy, reqSet bool) (Policy, error) {
	if reqSet {
		return req, nil
	}
	return s.Policy(ctx, t)
}

// Keep retains a response (and, with RetainAudio, the audio read from audio, streamed
// to the object store in chunks; nil: none) under the request id for
// p.TTL: Get stops returning it then, and Run erases it within Config.SweepEvery. It
// does nothing when p keeps nothing. The choice is recorded in the audit log (ids and
// TTL only, never content).
func (s *Store) Keep(ctx context.Context, t bus.TenantID, r bus.SessionID, p Policy, response []byte, audio io.Reader) error {
	p, err := p.Validate()
	if err != nil || !p.Keeps() {
		return err
	}
	now := s.now().UTC()
	rec := Record{Request: r, Tenant: t, Created: now, Expires: now.Add(p.TTL), Retain: p.Retain,
		Response: json.RawMessage(response)}
	if p.Retain == RetainAudio && audio != nil {
		_, err := s.audio.Put(ctx, jetstream.ObjectMeta{Name: audioName(t, r),
			Metadata: map[string]string{"expires": rec.Expires.Format(time.RFC3339Nano)}}, audio)
		if err != nil {
			return fmt.Errorf("privacy: keep audio of %s: %w", r, err)
		}
		rec.HasAudio = true
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := s.kv.Create(ctx, recKey(t, r), b, jetstream.KeyTTL(serverTTL(p.TTL))); err != nil {
		return fmt.Errorf("privacy: keep %s: %w", r, err)
	}
	return s.Audit(ctx, Entry{Actor: "request", Action: ActionRetained, Tenant: t,
		Target: fmt.Sprintf("%s retain=%s ttl=%v", r, p.Retain, p.TTL)})
}

// Get returns the retained record of request r of tenant t, or ErrNotFound (also for
// another tenant's request and for an expired one).
func (s *Store) Get(ctx context.Context, t bus.TenantID, r bus.SessionID) (Record, error) {
	e, err := s.kv.Get(ctx, recKey(t, r))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, fmt.Errorf("request %s: %w", r, ErrNotFound)
	}
	if err != nil {
		return Record{}, fmt.Errorf("privacy: get %s: %w", r, err)
	}
	var rec Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return Record{}, fmt.Errorf("privacy: get %s: %w", r, err)
	}
	if rec.Tenant != t || !s.now().Before(rec.Expires) {
		return Record{}, fmt.Errorf("request %s: %w", r, ErrNotFound)
	}
	return rec, nil
}

// Audio returns the retained audio of request r, or ErrNotFound.
func (s *Store) Audio(ctx context.Context, t bus.TenantID, r bus.SessionID) ([]byte, error) {
	if _, err := s.Get(ctx, t, r); err != nil {
		return nil, err
	}
	res, err := s.audio.Get(ctx, audioName(t, r))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("audio of %s: %w", r, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("privacy: audio of %s: %w", r, err)
	}
	defer res.Close()
	return io.ReadAll(res)
}

// Delete erases what is retained of request r (ErrNotFound when nothing is): the
// messages that held it are overwritten in the block files, not only unlinked from the
// index. The deletion is recorded.
func (s *Store) Delete(ctx context.Context, t bus.TenantID, r bus.SessionID, actor string) error {
	if _, err := s.Get(ctx, t, r); err != nil {
		return err
	}
	// Audio first: the record is what a retry finds.
	if _, err := s.eraseAudio(ctx, audioName(t, r)); err != nil {
		return fmt.Errorf("privacy: delete audio of %s: %w", r, err)
	}
	if _, err := s.eraseRecord(ctx, recKey(t, r)); err != nil {
		return fmt.Errorf("privacy: delete %s: %w", r, err)
	}
	return s.Audit(ctx, Entry{Actor: actor, Action: ActionDeleted, Tenant: t, Target: string(r)})
}

// Erased counts what EraseTenant removed.
type Erased struct {
	Transcripts int `json:"transcripts"`
	Audio       int `json:"audio"`
}

// EraseTenant removes everything Earshot keeps of tenant t except the billing ledger
// and the audit log: retained transcripts and audio (erased in the block files, as
// Delete does), the retention policy, and what the registered erasers hold (queued
// jobs, request status). It records the erasure.
func (s *Store) EraseTenant(ctx context.Context, t bus.TenantID, actor string) (Erased, error) {
	var out Erased
	tk := KeyPart(string(t))
	objs, err := s.audio.List(ctx, jetstream.ListObjectsShowDeleted())
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		return out, fmt.Errorf("privacy: erase %s: list audio: %w", t, err)
	}
	for _, o := range objs {
		if strings.HasPrefix(o.Name, tk+"/") {
			live, err := s.eraseAudio(ctx, o.Name)
			if err != nil {
				return out, fmt.Errorf("privacy: erase %s: %w", t, err)
			}
			if live {
				out.Audio++
			}
		}
	}
	live, err := eraseSubjects(ctx, s.kvStream, recSubject(tk+".>"))
	if err != nil {
		return out, fmt.Errorf("privacy: erase %s: %w", t, err)
	}
	out.Transcripts = len(live)
	if err := s.pol.Purge(ctx, tk); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return out, fmt.Errorf("privacy: erase %s: policy: %w", t, err)
	}
	s.mu.Lock()
	erasers := append([]namedEraser(nil), s.erasers...)
	s.mu.Unlock()
	for _, e := range erasers {
		if err := e.fn(ctx, t); err != nil {
			return out, fmt.Errorf("privacy: erase %s: %s: %w", t, e.name, err)
		}
	}
	s.log.Info("tenant erased", "tenant", t, "actor", actor, "transcripts", out.Transcripts, "audio", out.Audio)
	return out, s.Audit(ctx, Entry{Actor: actor, Action: ActionErased, Tenant: t,
		Target: fmt.Sprintf("transcripts=%d audio=%d", out.Transcripts, out.Audio)})
}

// Run erases retained transcripts and audio past their expiry every Config.SweepEvery
// until ctx ends. Get hides an expired record at once; Run is what removes its bytes.
// The servers' own TTLs are an hour later (expiryGrace) and do not overwrite: every
// process that serves retention must run it.
func (s *Store) Run(ctx context.Context) error {
	tick := time.NewTicker(s.sweepEvery)
	defer tick.Stop()
	for {
		if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("retention sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Sweep erases the retained transcripts and audio whose TTL has passed.
func (s *Store) Sweep(ctx context.Context) error {
	objs, err := s.audio.List(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		return fmt.Errorf("list audio: %w", err)
	}
	now := s.now()
	for _, o := range objs {
		exp, err := time.Parse(time.RFC3339Nano, o.Metadata["expires"])
		if err == nil && !now.Before(exp) {
			if _, err := s.eraseAudio(ctx, o.Name); err != nil {
				return err
			}
		}
	}
	if err := s.sweepTranscripts(ctx); err != nil {
		return fmt.Errorf("transcripts: %w", err)
	}
	return nil
}
