package prerecorded

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/gateway/twilio"
	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/privacy"
)

// The JetStream names this package uses are internal/bus's: bus.PrerecordedJobStream
// (subjects bus.PrerecordedJobSubject), bus.PrerecordedAudioBucket, bus.RequestStatusBucket.
const (
	consumerName  = "prerecorded"
	inProgressInt = 10 * time.Second
)

// Request states.
const (
	StateQueued  = "queued"
	StateRunning = "running"
	StateDone    = "done"
	StateFailed  = "failed"
)

// Status is what GET /v1/requests/{id} shows of a queued request. It holds no
// transcript and no audio.
type Status struct {
	RequestID bus.SessionID `json:"request_id"`
	Tenant    bus.TenantID  `json:"-"`
	State     string        `json:"status"`
	Percent   int           `json:"percent"`
	Created   time.Time     `json:"created"`
	Updated   time.Time     `json:"updated"`
	Error     string        `json:"error,omitempty"`
	Delivered bool          `json:"callback_delivered"`
}

// queued is the job message on the work queue.
type queued struct {
	Job         job            `json:"job"`
	Callback    string         `json:"callback"`
	Retain      privacy.Policy `json:"retain"`
	SHA256      string         `json:"sha256"`
	ContentType string         `json:"content_type,omitempty"`
	Encoding    string         `json:"encoding,omitempty"`
	SampleRate  int            `json:"sample_rate,omitempty"`
	Channels    int            `json:"channels,omitempty"`
	Samples     int            `json:"samples"`
	Created     time.Time      `json:"created"`
}

func statusKey(t bus.TenantID, id bus.SessionID) string {
	return privacy.KeyPart(string(t)) + "." + privacy.KeyPart(string(id))
}
func objName(t bus.TenantID, id bus.SessionID) string {
	return privacy.KeyPart(string(t)) + "/" + privacy.KeyPart(string(id))
}

func (h *Handler) ensure(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var err error
	h.stream, err = h.cfg.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: bus.PrerecordedJobStream, Description: "pre-recorded requests with a callback",
		Subjects: []string{bus.PrerecordedJobWildcard}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, MaxAge: h.cfg.JobTTL, Duplicates: time.Hour, Replicas: h.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("prerecorded: stream %s: %w", bus.PrerecordedJobStream, err)
	}
	h.audio, err = h.cfg.JS.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: bus.PrerecordedAudioBucket, Description: "queued pre-recorded uploads (deleted after processing)",
		TTL: h.cfg.JobTTL, Storage: jetstream.FileStorage, Replicas: h.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("prerecorded: object store %s: %w", bus.PrerecordedAudioBucket, err)
	}
	h.status, err = h.cfg.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bus.RequestStatusBucket, Description: "pre-recorded request status (no content)",
		TTL: h.cfg.JobTTL, History: 1, Storage: jetstream.FileStorage, Replicas: h.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("prerecorded: bucket %s: %w", bus.RequestStatusBucket, err)
	}
	return nil
}

// enqueue saves the upload and queues the job; the callback host must not be internal.
func (h *Handler) enqueue(ctx context.Context, q queued, body io.Reader) error {
	u, _ := url.Parse(q.Callback)
	if err := h.guard.checkHost(ctx, u.Hostname()); err != nil {
		if errors.Is(err, ErrURLRefused) {
			return wire.BadParam("callback", "%s", strings.TrimPrefix(err.Error(), ErrURLRefused.Error()+": "))
		}
		return wire.BadParam("callback", "%s", err.Error())
	}
	id, t := q.Job.Request, q.Job.Tenant
	if _, err := h.audio.Put(ctx, jetstream.ObjectMeta{Name: objName(t, id)}, body); err != nil {
		return fmt.Errorf("save upload %s: %w", id, err)
	}
	if err := h.setStatus(ctx, Status{RequestID: id, Tenant: t, State: StateQueued, Created: q.Created}); err != nil {
		return err
	}
	b, _ := json.Marshal(q)
	if _, err := h.cfg.JS.Publish(ctx, bus.PrerecordedJobSubject(t), b, jetstream.WithMsgID(string(id))); err != nil {
		return fmt.Errorf("queue %s: %w", id, err)
	}
	return nil
}

func (h *Handler) setStatus(ctx context.Context, s Status) error {
	s.Updated = time.Now().UTC()
	b, _ := json.Marshal(struct {
		Status
		Tenant bus.TenantID `json:"tenant"`
	}{s, s.Tenant})
	if _, err := h.status.Put(ctx, statusKey(s.Tenant, s.RequestID), b); err != nil {
		return fmt.Errorf("status of %s: %w", s.RequestID, err)
	}
	return nil
}

func (h *Handler) getStatus(ctx context.Context, t bus.TenantID, id bus.SessionID) (Status, bool, error) {
	e, err := h.status.Get(ctx, statusKey(t, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Status{}, false, nil
	}
	if err != nil {
		return Status{}, false, err
	}
	var s struct {
		Status
		Tenant bus.TenantID `json:"tenant"`
	}
	if err := json.Unmarshal(e.Value(), &s); err != nil || s.Tenant != t {
		return Status{}, false, err
	}
	s.Status.Tenant = s.Tenant
	return s.Status, true, nil
}

// Run processes queued jobs until ctx ends. Several gateways may run it: the durable
// work-queue consumer hands each job to one of them.
func (h *Handler) Run(ctx context.Context) error {
	cons, err := h.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: consumerName, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 3 * inProgressInt, MaxDeliver: 5, MaxAckPending: 16,
	})
	if err != nil {
		return fmt.Errorf("prerecorded: consumer: %w", err)
	}
	// CallbackWorkers jobs at once. A tenant has at most MaxJobsPerTenant jobs queued
	// (enforced at enqueue, across gateways) and CallbackWorkers is larger, so a tenant
	// whose receiver is slow (6 attempts of up to 30 s each) holds some workers, never
	// all of them: other tenants' callbacks go on.
	free := make(chan struct{}, h.cfg.CallbackWorkers)
	for range h.cfg.CallbackWorkers {
		free <- struct{}{}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		select {
		case <-free:
		case <-ctx.Done():
			return nil
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			free <- struct{}{}
			if ctx.Err() != nil {
				break
			}
			h.log.Warn("fetch job", "err", err)
			time.Sleep(time.Second)
			continue
		}
		got := false
		for m := range batch.Messages() {
			got = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { free <- struct{}{} }()
				h.process(ctx, m)
			}()
		}
		if !got {
			free <- struct{}{}
		}
	}
	return nil
}

func (h *Handler) process(ctx context.Context, m jetstream.Msg) {
	var q queued
	if err := json.Unmarshal(m.Data(), &q); err != nil {
		h.log.Error("malformed job dropped", "err", err)
		_ = m.Term()
		return
	}
	j := q.Job
	log := h.log.With("request", j.Request, "tenant", j.Tenant)
	st, ok, err := h.getStatus(ctx, j.Tenant, j.Request)
	if err != nil {
		_ = m.NakWithDelay(time.Second)
		return
	}
	if !ok || st.State == StateDone || st.State == StateFailed {
		_ = m.Ack() // erased, deleted, or already handled by an earlier delivery
		return
	}
	hb, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		t := time.NewTicker(inProgressInt)
		defer t.Stop()
		for {
			select {
			case <-hb.Done():
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	finish := func(state, msg string, delivered bool) {
		st.State, st.Error, st.Delivered = state, msg, delivered
		if state == StateDone {
			st.Percent = 100
		}
		// The upload is erased before the status says the request is over.
		if _, err := privacy.EraseObject(context.WithoutCancel(ctx), h.cfg.JS, h.audio, bus.PrerecordedAudioBucket, objName(j.Tenant, j.Request)); err != nil {
			log.Error("queued upload not erased", "err", err)
		}
		if err := h.setStatus(context.WithoutCancel(ctx), st); err != nil {
			log.Error("status not saved", "err", err)
		}
		_ = m.Ack()
	}
	// The tenant may have run out of balance (or changed plan) since it queued the job.
	if err := h.admit(ctx, j.Tenant, j.Model); err != nil && (errors.Is(err, gateway.ErrNoBalance) ||
		errors.Is(err, gateway.ErrQuotaExhausted) || errors.Is(err, gateway.ErrModelNotInPlan)) {
		finish(StateFailed, "refused when the job was due to run: "+err.Error(), false)
		return
	}
	obj, err := h.audio.Get(ctx, objName(j.Tenant, j.Request))
	if err != nil {
		finish(StateFailed, "the uploaded audio is no longer available", false)
		return
	}
	up, err := spool(h.cfg.SpoolDir, obj, h.cfg.MaxUpload, q.ContentType)
	obj.Close()
	if err != nil {
		if ctx.Err() != nil {
			_ = m.Nak()
			return
		}
		log.Warn("queued upload not readable", "err", err)
		finish(StateFailed, "the uploaded audio is no longer available", false)
		return
	}
	defer up.Close()
	st.State = StateRunning
	_ = h.setStatus(ctx, st)
	src, err := openPCM(up, Params{Params: wire.Params{Encoding: q.Encoding, SampleRate: q.SampleRate, Channels: max(1, q.Channels)}})
	if err != nil {
		finish(StateFailed, err.Error(), false)
		return
	}
	// The plan (or the balance) may have changed since the job was queued.
	releaseHold, err := h.admitFile(ctx, j.Tenant, j.Model, bus.SessionID(j.Request), src.Samples)
	if err != nil {
		if errors.Is(err, ErrTooLong) || errors.Is(err, gateway.ErrNoBalance) || errors.Is(err, gateway.ErrQuotaExhausted) {
			finish(StateFailed, "refused when the job was due to run: "+err.Error(), false)
		} else {
			log.Warn("queued request not admitted yet", "err", err)
			_ = m.NakWithDelay(5 * time.Second) // the plan or balance could not be read: later
		}
		return
	}
	defer releaseHold()
	lastSaved := 0
	finals, err := h.transcribe(ctx, j, src, func(pct int) {
		if pct >= lastSaved+5 {
			lastSaved = pct
			st.Percent = pct
			_ = h.setStatus(ctx, st)
		}
	})
	if err != nil {
		if ctx.Err() != nil {
			_ = m.Nak() // shutting down: another processor takes it
			return
		}
		md, _ := m.Metadata()
		if errors.Is(err, bus.ErrNoCapacity) && md != nil && md.NumDelivered < 5 {
			_ = m.NakWithDelay(5 * time.Second)
			return
		}
		log.Warn("queued transcription failed", "err", err)
		finish(StateFailed, "transcription failed", false)
		return
	}
	resp := h.response(j, q.SHA256, int(src.Produced()), time.Now(), finals)
	out, _ := json.Marshal(resp)
	if err := h.keep(ctx, j.Tenant, j.Request, q.Retain, out, up.reader()); err != nil {
		log.Error("retention failed", "err", err)
	}
	if err := h.deliver(ctx, j.Tenant, q.Callback, j.Request, out); err != nil {
		log.Warn("callback not delivered", "err", err)
		finish(StateFailed, err.Error(), false)
		return
	}
	log.Info("queued request done", "audio_s", resp.Metadata.Duration)
	finish(StateDone, "", true)
}

// deliver POSTs the result to the callback until it answers 2xx, with doubling
// backoff. Every attempt carries the same request id (dg-request-id and
// Idempotency-Key headers) so the receiver can drop a repeat.
func (h *Handler) deliver(ctx context.Context, tenant bus.TenantID, callback string, id bus.SessionID, body []byte) error {
	backoff := h.cfg.CallbackBackoff
	var last, secret string
	if h.cfg.CallbackSecrets != nil {
		var err error
		if secret, err = h.cfg.CallbackSecrets.Secret(ctx, tenant); err != nil {
			return fmt.Errorf("%w: no signing secret: %v", ErrCallback, err)
		}
	}
	for attempt := 1; attempt <= h.cfg.CallbackAttempts; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, callback, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCallback, err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("dg-request-id", string(id))
		req.Header.Set("Idempotency-Key", string(id))
		if secret != "" {
			req.Header.Set(twilio.SignatureHeader, twilio.SignWebhook(secret, time.Now(), body))
		}
		resp, err := h.cb.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if attempt == h.cfg.CallbackAttempts {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	return fmt.Errorf("%w after %d attempts: %s", ErrCallback, h.cfg.CallbackAttempts, last)
}

// getRequest serves GET /v1/requests/{id}: status of a queued request and, if
// retained, its response. Another tenant's request is 404.
func (h *Handler) getRequest(w http.ResponseWriter, r *http.Request) {
	id := bus.SessionID(r.PathValue("id"))
	tenant, _, err := h.cfg.Auth(r)
	if err != nil {
		writeErr(w, http.StatusUnauthorized, wire.CodeUnauthorized, "missing or invalid credentials", "", id)
		return
	}
	st, ok, err := h.getStatus(r.Context(), tenant, id)
	if err != nil {
		h.fail(w, err, id)
		return
	}
	out := struct {
		Status
		Response json.RawMessage `json:"response,omitempty"`
		Expires  *time.Time      `json:"retained_until,omitempty"`
	}{Status: st}
	if h.cfg.Retention != nil {
		rec, err := h.cfg.Retention.Get(r.Context(), tenant, id)
		switch {
		case err == nil:
			out.Response, out.Expires = rec.Response, &rec.Expires
			if !ok {
				out.Status = Status{RequestID: id, State: StateDone, Percent: 100, Created: rec.Created, Updated: rec.Created}
				ok = true
			}
		case !errors.Is(err, privacy.ErrNotFound):
			h.fail(w, err, id)
			return
		}
	}
	if !ok {
		h.fail(w, privacy.ErrNotFound, id)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// deleteRequest serves DELETE /v1/requests/{id}: removes the retained result and
// audio, the status and a still-queued upload.
func (h *Handler) deleteRequest(w http.ResponseWriter, r *http.Request) {
	id := bus.SessionID(r.PathValue("id"))
	tenant, key, err := h.cfg.Auth(r)
	if err != nil {
		writeErr(w, http.StatusUnauthorized, wire.CodeUnauthorized, "missing or invalid credentials", "", id)
		return
	}
	found := false
	if h.cfg.Retention != nil {
		err := h.cfg.Retention.Delete(r.Context(), tenant, id, "key:"+string(key))
		if err != nil && !errors.Is(err, privacy.ErrNotFound) {
			h.fail(w, err, id)
			return
		}
		found = err == nil
	}
	if _, ok, _ := h.getStatus(r.Context(), tenant, id); ok {
		found = true
		_ = h.status.Purge(r.Context(), statusKey(tenant, id))
		if _, err := privacy.EraseObject(r.Context(), h.cfg.JS, h.audio, bus.PrerecordedAudioBucket, objName(tenant, id)); err != nil {
			h.fail(w, err, id)
			return
		}
	}
	if !found {
		h.fail(w, privacy.ErrNotFound, id)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// eraseTenant removes the tenant's queued jobs, uploads and statuses (privacy.Eraser).
func (h *Handler) eraseTenant(ctx context.Context, t bus.TenantID) error {
	if bus.ValidToken(string(t)) {
		if err := h.stream.Purge(ctx, jetstream.WithPurgeSubject(bus.PrerecordedJobSubject(t))); err != nil {
			return fmt.Errorf("purge jobs: %w", err)
		}
	}
	tk := privacy.KeyPart(string(t))
	if l, err := h.status.ListKeysFiltered(ctx, tk+".>"); err == nil {
		var keys []string
		for k := range l.Keys() {
			keys = append(keys, k)
		}
		for _, k := range keys {
			if err := h.status.Purge(ctx, k); err != nil {
				return fmt.Errorf("purge status: %w", err)
			}
		}
	} else if !errors.Is(err, jetstream.ErrNoKeysFound) {
		return fmt.Errorf("list statuses: %w", err)
	}
	objs, err := h.audio.List(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		return fmt.Errorf("list uploads: %w", err)
	}
	for _, o := range objs {
		if strings.HasPrefix(o.Name, tk+"/") {
			if _, err := privacy.EraseObject(ctx, h.cfg.JS, h.audio, bus.PrerecordedAudioBucket, o.Name); err != nil {
				return fmt.Errorf("erase upload: %w", err)
			}
		}
	}
	return nil
}
