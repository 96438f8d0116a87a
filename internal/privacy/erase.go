package privacy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/earshot-dev/earshot/internal/bus"
)

// Erasure. A KV Purge or an object Delete only writes a marker: JetStream's file store
// then drops the old messages from its index and leaves their bytes in the block files
// until the block is compacted, and so does its own TTL and MaxAge expiry. What this
// package deletes it therefore erases first, message by message, with SecureDeleteMsg:
// the server overwrites the message in its block file with random bytes. That needs a
// stream that allows message deletes, which KV buckets made by nats.go do not, so
// Store owns the RETAINED bucket's stream config (retainedStreamConfig).
//
// Expiry is the sweeper's job (Store.Run): it erases a record once its Expires has
// passed. The server's own per-key TTL is set expiryGrace later, as a backstop only.

// expiryGrace is how long after a record's expiry the server's per-key TTL (and the
// buckets' MaxAge, after MaxTTL) would drop it without overwriting it: long enough for
// the sweeper to erase it first, even after a restart of a stopped server.
const expiryGrace = time.Hour

// DefaultSweepEvery is how often Run erases expired records unless Config says.
const DefaultSweepEvery = 5 * time.Second

// Stream names of the buckets.
var (
	retainedStream = bus.KVStream(bus.RetainedBucket)
	audioStream    = bus.ObjectStream(bus.RetainedAudioBucket)
)

func recSubject(key string) string { return bus.KVSubject(bus.RetainedBucket, key) }

// retainedStreamConfig is what nats.go's CreateKeyValue would make of
// {Bucket: RETAINED, TTL: MaxTTL+expiryGrace, LimitMarkerTTL: 1s, History: 1}, but
// with message deletes allowed so that records can be erased in place.
func retainedStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:                   bus.KVStream(bus.RetainedBucket),
		Description:            "opt-in retained transcripts (privacy)",
		Subjects:               []string{bus.KVSubject(bus.RetainedBucket, ">")},
		MaxMsgsPerSubject:      1,
		MaxBytes:               -1,
		MaxAge:                 MaxTTL + expiryGrace,
		MaxMsgSize:             -1,
		MaxMsgs:                -1,
		MaxConsumers:           -1,
		Storage:                jetstream.FileStorage,
		Replicas:               replicas,
		AllowRollup:            true,
		DenyDelete:             false, // SecureDeleteMsg must work
		Duplicates:             2 * time.Minute,
		AllowDirect:            true,
		Discard:                jetstream.DiscardNew,
		AllowMsgTTL:            true,
		SubjectDeleteMarkerTTL: time.Second,
	}
}

// openRetained creates or updates the RETAINED bucket's stream and binds to it. A
// stream made by an older Earshot (through CreateKeyValue, which denies message
// deletes for good) is replaced by migrateRetained.
func (s *Store) openRetained(ctx context.Context, replicas int) error {
	cfg := retainedStreamConfig(replicas)
	if st, err := s.js.Stream(ctx, retainedStream); err == nil && st.CachedInfo().Config.DenyDelete {
		if err := s.migrateRetained(ctx, st, cfg); err != nil {
			return fmt.Errorf("migrate %s: %w", retainedStream, err)
		}
	}
	st, err := s.js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return err
	}
	s.kvStream = st
	s.kv, err = s.js.KeyValue(ctx, bus.RetainedBucket)
	return err
}

// migrateRetained replaces a RETAINED stream that denies message deletes: it reads the
// records still in force, deletes the stream (and with it every block file, residue of
// past deletions included) and writes them back into one that allows erasure. Records
// kept while it runs, or all of them if the process dies between the delete and the
// rewrite, are lost; it runs once per installation.
func (s *Store) migrateRetained(ctx context.Context, old jetstream.Stream, cfg jetstream.StreamConfig) error {
	var live []Record
	now := s.now()
	err := scan(ctx, old, jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
		FilterSubjects: []string{recSubject(">")}}, func(m jetstream.Msg) error {
		var rec Record
		if m.Headers().Get(kvOperation) == "" && json.Unmarshal(m.Data(), &rec) == nil && now.Before(rec.Expires) {
			live = append(live, rec)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Another process may have migrated meanwhile.
	if info, err := old.Info(ctx); err != nil || !info.Config.DenyDelete {
		return err
	}
	if err := s.js.DeleteStream(ctx, retainedStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	if _, err := s.js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return err
	}
	kv, err := s.js.KeyValue(ctx, bus.RetainedBucket)
	if err != nil {
		return err
	}
	for _, rec := range live {
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		_, err = kv.Create(ctx, recKey(rec.Tenant, rec.Request), b, jetstream.KeyTTL(serverTTL(rec.Expires.Sub(now))))
		if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("rewrite %s: %w", rec.Request, err)
		}
	}
	s.log.Warn("replaced the retained-transcript stream with one that allows erasure",
		"stream", retainedStream, "records", len(live))
	return nil
}

// serverTTL is the per-key TTL given to the server for a record kept for ttl: whole
// seconds (the server truncates), expiryGrace after the record's own expiry.
func serverTTL(ttl time.Duration) time.Duration {
	return (ttl + time.Second - 1).Truncate(time.Second) + expiryGrace
}

const kvOperation = "KV-Operation"

// scan delivers every message of st that cfg selects to fn, in stream order, through
// an ephemeral consumer that it deletes afterwards. cfg's ack policy is overridden.
func scan(ctx context.Context, st jetstream.Stream, cfg jetstream.ConsumerConfig, fn func(jetstream.Msg) error) error {
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.MemoryStorage = true
	cfg.InactiveThreshold = time.Minute
	cons, err := st.CreateConsumer(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = st.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return err
		}
		got := 0
		var ferr error
		for m := range batch.Messages() {
			got++
			if ferr == nil {
				ferr = fn(m)
			}
		}
		if ferr != nil {
			return ferr
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return err
		}
		if got == 0 || ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// eraseSeq overwrites message seq of st in place. A message that is already gone is
// not an error.
func eraseSeq(ctx context.Context, st jetstream.Stream, seq uint64) error {
	err := st.SecureDeleteMsg(ctx, seq)
	if err == nil {
		return nil
	}
	if _, gerr := st.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
		return nil
	}
	return fmt.Errorf("erase message %d of %s: %w", seq, st.CachedInfo().Config.Name, err)
}

// eraseSubjects erases every message of st on the subjects, markers included, and
// returns the distinct subjects that held a live KV value or object.
func eraseSubjects(ctx context.Context, st jetstream.Stream, subjects ...string) (map[string]bool, error) {
	var seqs []uint64
	live := map[string]bool{}
	err := scan(ctx, st, jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubjects: subjects, HeadersOnly: true}, func(m jetstream.Msg) error {
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		seqs = append(seqs, md.Sequence.Stream)
		if m.Headers().Get(kvOperation) == "" && m.Headers().Get(jetstream.MarkerReasonHeader) == "" {
			live[m.Subject()] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, seq := range seqs {
		if err := eraseSeq(ctx, st, seq); err != nil {
			return nil, err
		}
	}
	return live, nil
}

// eraseRecord erases every message of the RETAINED key (all revisions and markers),
// so that the key no longer exists; it reports whether a live record was there.
func (s *Store) eraseRecord(ctx context.Context, key string) (bool, error) {
	live, err := eraseSubjects(ctx, s.kvStream, recSubject(key))
	return len(live) > 0, err
}

// eraseAudio erases the chunks and every meta message of the retained audio object
// name, so that it no longer exists (not even as a deletion marker).
func (s *Store) eraseAudio(ctx context.Context, name string) (bool, error) {
	return eraseObject(ctx, s.audio, s.audioStream, bus.RetainedAudioBucket, name)
}

// EraseObject erases object name of the object store obs (bucket) in place: its chunks
// and every meta message are overwritten in the stream's block files (SecureDeleteMsg),
// not only marked deleted, so its bytes are gone from disk. It reports whether a live
// object was there; a missing one is not an error. The bucket's stream must allow
// message deletes (nats.go's object stores do).
func EraseObject(ctx context.Context, js jetstream.JetStream, obs jetstream.ObjectStore, bucket, name string) (bool, error) {
	st, err := js.Stream(ctx, bus.ObjectStream(bucket))
	if err != nil {
		return false, fmt.Errorf("object store %s: %w", bucket, err)
	}
	return eraseObject(ctx, obs, st, bucket, name)
}

func eraseObject(ctx context.Context, obs jetstream.ObjectStore, st jetstream.Stream, bucket, name string) (bool, error) {
	info, err := obs.GetInfo(ctx, name, jetstream.GetObjectInfoShowDeleted())
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	subjects := []string{bus.ObjectMetaSubject(bucket, base64.URLEncoding.EncodeToString([]byte(name)))}
	if info.NUID != "" {
		subjects = append(subjects, bus.ObjectChunkSubject(bucket, info.NUID))
	}
	if _, err := eraseSubjects(ctx, st, subjects...); err != nil {
		return false, err
	}
	return !info.Deleted, nil
}

// sweepTranscripts erases the records whose Expires has passed. It reads headers only
// and fetches a record's body only when its server TTL says it may be due.
func (s *Store) sweepTranscripts(ctx context.Context) error {
	now := s.now()
	var due []uint64
	err := scan(ctx, s.kvStream, jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubjects: []string{recSubject(">")}, HeadersOnly: true}, func(m jetstream.Msg) error {
		h := m.Headers()
		if h.Get(kvOperation) != "" || h.Get(jetstream.MarkerReasonHeader) != "" {
			return nil // a marker: no content, and the server expires it
		}
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		// serverTTL rounded the record's TTL up to whole seconds: look a second early.
		if ttl, ok := parseTTL(h.Get(jetstream.MsgTTLHeader)); ok && now.Before(md.Timestamp.Add(ttl-expiryGrace-time.Second)) {
			return nil
		}
		due = append(due, md.Sequence.Stream)
		return nil
	})
	if err != nil {
		return err
	}
	for _, seq := range due {
		m, err := s.kvStream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		var rec Record
		if err := json.Unmarshal(m.Data, &rec); err != nil {
			s.log.Warn("retention sweep: unreadable record", "seq", seq, "err", err)
			continue
		}
		if now.Before(rec.Expires) {
			continue
		}
		if err := eraseSeq(ctx, s.kvStream, seq); err != nil {
			return err
		}
		s.log.Debug("retained transcript expired and erased", "tenant", rec.Tenant, "request", rec.Request)
	}
	return nil
}

// parseTTL reads a Nats-TTL header the way the server does (a Go duration or seconds).
func parseTTL(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d.Truncate(time.Second), true
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
		return time.Duration(n) * time.Second, true
	}
	return 0, false
}
