package prerecorded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/earshot-dev/earshot/internal/lang"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/netguard"
	"github.com/earshot-dev/earshot/internal/privacy"
	"github.com/earshot-dev/earshot/models"
)

// DefaultMaxUpload is the largest upload or fetched file accepted by default.
const DefaultMaxUpload = 100 << 20

// DefaultMaxAudio is the longest audio a pre-recorded request may hold by default,
// whatever its plan: the longest phone call (--max-call-duration's default).
const DefaultMaxAudio = 4 * time.Hour

// Config configures the pre-recorded API. Backend, Auth and JS are required.
type Config struct {
	Backend gateway.Backend
	// Auth authenticates a request (the gateway's API keys and tokens); an error is 401.
	Auth     func(*http.Request) (bus.TenantID, bus.KeyID, error)
	Metering gateway.Metering // nil: not billed (tests)
	JS       jetstream.JetStream
	// Retention keeps what tenants opt in to; nil: retain= is refused.
	Retention *privacy.Store
	// URLAllowList names the hosts url= may fetch from ("media.example.com",
	// "*.example.com"); empty: url= is refused.
	URLAllowList []string
	MaxUpload    int64 // bytes; default DefaultMaxUpload
	// MaxAudio is the longest audio one request may hold, known from the file's header
	// (or a raw body's size) before anything is decoded: longer is 413 MAX_DURATION.
	// Default DefaultMaxAudio.
	MaxAudio time.Duration
	// FileAdmit, if set, checks a file of ms milliseconds against the tenant's plan
	// before it is transcribed: the plan's longest file (an error wrapping ErrTooLong,
	// 413) and what the balance or quota still covers (gateway.ErrNoBalance or
	// ErrQuotaExhausted, 402), so that a file is never served beyond what is paid for.
	// Admitted, the file holds its ms of the tenant's balance (with the tenant's live
	// streams and other files, on every gateway) until release is called with the
	// request's end; release is never nil when err is nil.
	FileAdmit func(ctx context.Context, t bus.TenantID, model string, session bus.SessionID, ms int64) (release func(), err error)
	// Metrics, if set, gets earshot_prerecorded_requests_in_flight (synchronous requests
	// holding a tenant slot on this gateway).
	Metrics prometheus.Registerer
	// Replicas of the job stream, the upload object store and the status bucket
	// (default 1; 3 in a NATS cluster).
	Replicas int
	// SpoolDir holds uploads while they are transcribed, as unlinked temporary files:
	// memory per request does not grow with the file. "" = the system's temp directory.
	SpoolDir     string
	Log          *slog.Logger
	DefaultModel string // default models.Default ("tiny.en")
	// ValidRedaction checks redact= (transcriber.ValidRedaction); nil: the built-in list.
	ValidRedaction func([]string) error
	// Redact, if set (transcriber.Redact), is applied to every final before it leaves
	// this package, in addition to the worker's own redaction.
	Redact func(text string, words []bus.Word, kinds []string) (string, []bus.Word, error)
	// Speed is the most audio sent per second of wall time, in multiples of real time
	// (default 8); the backend's own limit applies on top (remote.Client MaxSpeed).
	Speed float64
	// Window is how far audio may run ahead of the oldest speech the worker has not
	// settled; keep it under the worker's MaxBuffer minus MaxSegment. Default 30 s.
	Window time.Duration
	// JobTTL bounds how long queued audio and request status are kept. Default 24 h.
	JobTTL time.Duration
	// CallbackAttempts and CallbackBackoff: retries of a failing callback POST, the
	// backoff doubling from CallbackBackoff. Defaults 6 and 1 s.
	CallbackAttempts int
	CallbackBackoff  time.Duration
	// AllowLoopback lets url= and callback= reach loopback addresses. Tests only.
	AllowLoopback bool
	// Quota is the live path's admission (plan, model, balance, quotas): a request it
	// refuses gets the same 402/403 as GET /v1/listen, and a queued job is checked again
	// before it runs. nil: not checked (tests).
	Quota gateway.Quota
	// CallbackSecrets signs every callback POST (X-Earshot-Signature, the scheme of
	// phone webhooks) with the tenant's secret, which GET /v1/callbacks/secret returns
	// to an API key of the tenant. nil: callbacks are unsigned (tests).
	CallbackSecrets CallbackSecrets
	// CallbackWorkers is how many callback jobs this gateway runs at once. Default (and
	// at least) 2 × MaxJobsPerTenant: one tenant's slow receiver can hold at most half.
	CallbackWorkers int
	// Slots counts a tenant's synchronous requests: across gateways with a
	// gateway.NewRedisLeases of MaxJobsPerTenant; default gateway.NewLocalGuard.
	Slots gateway.LiveGuard
	// MaxJobsPerTenant bounds a tenant's synchronous requests in flight on this gateway,
	// and separately its callback jobs waiting or running (across gateways: counted in
	// the job stream). Default DefaultMaxJobsPerTenant.
	MaxJobsPerTenant int
}

// DefaultMaxJobsPerTenant is Config.MaxJobsPerTenant's default.
const DefaultMaxJobsPerTenant = 4

// Handler serves POST /v1/listen, GET and DELETE /v1/requests/{id}, and (Run) the
// queue of callback jobs. Safe for concurrent use.
type Handler struct {
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	guard  guard
	status jetstream.KeyValue
	audio  jetstream.ObjectStore
	stream jetstream.Stream
	cb     *http.Client

	inFlight prometheus.Gauge // synchronous requests holding a slot
}

// New checks cfg, creates the PRERECORDED stream, the PRERECORDED_AUDIO object store
// and the REQUESTS status bucket, and registers the tenant eraser with Retention.
func New(ctx context.Context, cfg Config) (*Handler, error) {
	if cfg.Backend == nil || cfg.Auth == nil || cfg.JS == nil {
		return nil, fmt.Errorf("%w: Backend, Auth and JS are required", ErrConfig)
	}
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = DefaultMaxUpload
	}
	cfg.Replicas = max(1, cfg.Replicas)
	if cfg.MaxAudio <= 0 {
		cfg.MaxAudio = DefaultMaxAudio
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.DefaultModel == "" {
		cfg.DefaultModel = models.Default
	}
	if cfg.Speed <= 0 {
		cfg.Speed = 8
	}
	if cfg.Window <= 0 {
		cfg.Window = 30 * time.Second
	}
	if cfg.JobTTL <= 0 {
		cfg.JobTTL = 24 * time.Hour
	}
	if cfg.CallbackAttempts <= 0 {
		cfg.CallbackAttempts = 6
	}
	if cfg.CallbackBackoff <= 0 {
		cfg.CallbackBackoff = time.Second
	}
	if cfg.MaxJobsPerTenant <= 0 {
		cfg.MaxJobsPerTenant = DefaultMaxJobsPerTenant
	}
	cfg.CallbackWorkers = max(cfg.CallbackWorkers, 2*cfg.MaxJobsPerTenant)
	if cfg.Slots == nil {
		cfg.Slots = gateway.NewLocalGuard(cfg.MaxJobsPerTenant)
	}
	h := &Handler{cfg: cfg, log: cfg.Log.With("component", "prerecorded"), mux: http.NewServeMux(),
		guard: guard{allow: cfg.URLAllowList, net: netguard.Guard{AllowLoopback: cfg.AllowLoopback}}}
	h.cb = h.guard.client(30*time.Second, nil)
	h.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "earshot", Subsystem: "prerecorded",
		Name: "requests_in_flight", Help: "Synchronous pre-recorded requests holding a tenant slot on this gateway."})
	if err := h.ensure(ctx); err != nil {
		return nil, err
	}
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(h.inFlight); err != nil {
			return nil, fmt.Errorf("prerecorded: metrics: %w", err)
		}
	}
	if cfg.Retention != nil {
		cfg.Retention.OnErase("prerecorded", h.eraseTenant)
	}
	h.mux.HandleFunc("POST /v1/listen", h.listen)
	h.mux.HandleFunc("GET /v1/requests/{id}", h.getRequest)
	h.mux.HandleFunc("DELETE /v1/requests/{id}", h.deleteRequest)
	h.mux.HandleFunc("GET /v1/callbacks/secret", h.getSecret)
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func writeErr(w http.ResponseWriter, status int, code wire.ErrorCode, msg, param string, id bus.SessionID) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("dg-error", string(code))
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(wire.HTTPError{Code: code, Message: msg, Param: param, RequestID: string(id)})
}

// fail maps an error to its HTTP status.
func (h *Handler) fail(w http.ResponseWriter, err error, id bus.SessionID) {
	var pe *wire.ParamError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &pe):
		writeErr(w, http.StatusBadRequest, wire.CodeBadRequest, pe.Error(), pe.Param, id)
	case errors.As(err, &mbe) || errors.Is(err, ErrTooLarge):
		writeErr(w, http.StatusRequestEntityTooLarge, wire.CodeMessageTooLarge,
			fmt.Sprintf("audio too large: the limit is %d MiB (%d bytes); send a shorter file", h.cfg.MaxUpload>>20, h.cfg.MaxUpload), "", id)
	case errors.Is(err, ErrTooLong):
		writeErr(w, http.StatusRequestEntityTooLarge, wire.CodeMaxDuration, err.Error(), "", id)
	case errors.Is(err, ErrNotAudio):
		writeErr(w, http.StatusBadRequest, wire.CodeBadAudio, err.Error(), "", id)
	case errors.Is(err, ErrURLRefused), errors.Is(err, ErrFetch):
		writeErr(w, http.StatusBadRequest, wire.CodeBadRequest, err.Error(), "url", id)
	case errors.Is(err, gateway.ErrNoBalance):
		writeErr(w, http.StatusPaymentRequired, wire.CodeNoBalance, err.Error(), "", id)
	case errors.Is(err, gateway.ErrQuotaExhausted):
		writeErr(w, http.StatusPaymentRequired, wire.CodeQuotaExhausted, err.Error(), "", id)
	case errors.Is(err, gateway.ErrModelNotInPlan):
		writeErr(w, http.StatusForbidden, wire.CodeModelNotInPlan, err.Error(), "model", id)
	case errors.Is(err, ErrTooManyJobs):
		w.Header().Set("Retry-After", "5")
		writeErr(w, http.StatusTooManyRequests, wire.CodeTooManyStreams, err.Error(), "", id)
	case errors.Is(err, bus.ErrNoCapacity):
		writeErr(w, http.StatusServiceUnavailable, wire.CodeNoCapacity, err.Error(), "", id)
	case errors.Is(err, privacy.ErrNotFound):
		writeErr(w, http.StatusNotFound, wire.CodeNotFound, "no such request", "", id)
	case errors.Is(err, context.Canceled):
		writeErr(w, 499, wire.CodeBadRequest, "request cancelled", "", id)
	default:
		h.log.Error("pre-recorded request failed", "request", id, "err", err)
		writeErr(w, http.StatusInternalServerError, wire.CodeInternal, "transcription failed", "", id)
	}
}

// listen serves POST /v1/listen.
func (h *Handler) listen(w http.ResponseWriter, r *http.Request) {
	id := bus.NewSessionID()
	w.Header().Set("dg-request-id", string(id))
	// A request refused before its body is read closes its connection (see refuse).
	// Dropped once the body has been read.
	w.Header().Set("Connection", "close")
	tenant, key, err := h.cfg.Auth(r)
	if err != nil {
		h.refuse(w, r, errUnauthorized, id)
		return
	}
	p, err := ParseListenParams(r.URL.Query(), h.cfg.ValidRedaction)
	if err != nil {
		h.refuse(w, r, err, id)
		return
	}
	pol, err := h.policy(r.Context(), tenant, p)
	if err != nil {
		h.refuse(w, r, err, id)
		return
	}
	// The live path's admission, before the body is read: nobody is served for free.
	model := p.Model
	if model == "" {
		model = h.cfg.DefaultModel
	}
	if err := h.admit(r.Context(), tenant, model); err != nil {
		h.refuse(w, r, err, id)
		return
	}
	if p.Callback != "" {
		err = h.queueRoom(r.Context(), tenant)
	} else {
		var release func()
		release, err = h.acquire(r.Context(), tenant, id)
		if err == nil {
			defer release()
		}
	}
	if err != nil {
		h.refuse(w, r, err, id)
		return
	}
	up, err := h.readBody(w, r)
	if err != nil {
		h.refuse(w, r, err, id)
		return
	}
	defer up.Close()
	w.Header().Del("Connection")
	src, err := openPCM(up, p)
	if err != nil {
		h.fail(w, err, id)
		return
	}
	releaseHold, err := h.admitFile(r.Context(), tenant, model, bus.SessionID(id), src.Samples)
	if err != nil {
		h.fail(w, err, id)
		return
	}
	defer releaseHold()
	j := job{Request: id, Tenant: tenant, Key: key, Model: model, Language: p.Language, Redact: p.Redact,
		Keyterms: p.Keyterms, Utterances: p.Utterances, UttSplit: p.UttSplit, Paragraphs: p.Paragraphs}
	log := h.log.With("request", id, "tenant", tenant)
	if p.Callback != "" {
		q := queued{Job: j, Callback: p.Callback, Retain: pol, SHA256: up.sha256,
			ContentType: up.ctype, Encoding: p.Encoding, SampleRate: p.SampleRate, Channels: p.Channels,
			Samples: int(src.Samples), Created: time.Now().UTC()}
		if err := h.enqueue(r.Context(), q, up.reader()); err != nil {
			h.fail(w, err, id)
			return
		}
		log.Info("pre-recorded request queued", "audio_s", float64(src.Samples)/bus.SampleRate)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]string{"request_id": string(id)})
		return
	}
	start := time.Now()
	finals, err := h.transcribe(r.Context(), j, src, nil)
	if err != nil {
		h.fail(w, err, id)
		return
	}
	resp := h.response(j, up.sha256, int(src.Produced()), time.Now(), finals)
	out, _ := json.Marshal(resp)
	if err := h.keep(r.Context(), tenant, id, pol, out, up.reader()); err != nil {
		log.Error("retention failed", "err", err)
	}
	log.Info("pre-recorded request done", "audio_s", resp.Metadata.Duration, "took", time.Since(start).Round(time.Millisecond))
	writeResponse(w, r, resp, out)
}

// earlyDrain bounds how long refuse reads what a refused client is still sending.
const earlyDrain = 2 * time.Second

// errUnauthorized is refuse's 401.
var errUnauthorized = errors.New("missing or invalid credentials")

// refuse answers a request refused before its body was read, then reads and drops what
// the client is still sending (at most earlyDrain and MaxUpload bytes) before the
// connection closes. Without that, a client still writing its upload meets a reset
// and can lose the answer (a 402 or 413 it should act on); the bounds keep a trickled
// or endless body from holding the connection.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, err error, id bus.SessionID) {
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex()
	if errors.Is(err, errUnauthorized) {
		writeErr(w, http.StatusUnauthorized, wire.CodeUnauthorized, err.Error(), "", id)
	} else {
		h.fail(w, err, id)
	}
	_ = rc.Flush()
	until := time.Now().Add(earlyDrain)
	// A body that sets its own read deadlines (the server's minimum-rate guard) is told
	// to keep to this one.
	if lb, ok := r.Body.(interface{ LimitDeadline(time.Time) }); ok {
		lb.LimitDeadline(until)
	}
	_ = rc.SetReadDeadline(until)
	_, _ = io.CopyN(io.Discard, r.Body, h.cfg.MaxUpload)
}

// admitFile checks a file of samples 16 kHz samples against MaxAudio and FileAdmit;
// release ends its hold on the tenant's balance (never nil when err is nil).
func (h *Handler) admitFile(ctx context.Context, t bus.TenantID, model string, session bus.SessionID, samples int64) (release func(), err error) {
	ms := samples / bus.SamplesPerMs
	if ms > h.cfg.MaxAudio.Milliseconds() {
		return nil, fmt.Errorf("%w: the file holds %s of audio, over this server's limit of %s; split it",
			ErrTooLong, time.Duration(ms)*time.Millisecond, h.cfg.MaxAudio)
	}
	if h.cfg.FileAdmit == nil {
		return func() {}, nil
	}
	return h.cfg.FileAdmit(ctx, t, model, session, ms)
}

// admit applies the live admission (Config.Quota) to tenant and model.
func (h *Handler) admit(ctx context.Context, t bus.TenantID, model string) error {
	if h.cfg.Quota == nil {
		return nil
	}
	return h.cfg.Quota.Check(ctx, t, model)
}

// acquire takes one of tenant's synchronous request slots (across gateways when
// Config.Slots is shared).
func (h *Handler) acquire(ctx context.Context, t bus.TenantID, id bus.SessionID) (release func(), err error) {
	rel, err := h.cfg.Slots.Acquire(ctx, gateway.SessionInfo{Tenant: t, Session: id})
	switch {
	case errors.Is(err, gateway.ErrTooManyStreams):
		return nil, fmt.Errorf("%w: %d pre-recorded requests of this tenant are already running; retry when one has finished", ErrTooManyJobs, h.cfg.MaxJobsPerTenant)
	case err != nil:
		return nil, fmt.Errorf("count the tenant's requests: %w", err)
	}
	h.inFlight.Inc()
	return func() { h.inFlight.Dec(); rel() }, nil
}

// queueRoom checks that tenant has fewer than MaxJobsPerTenant callback jobs waiting
// or running (the job stream keeps a job until it is done).
func (h *Handler) queueRoom(ctx context.Context, t bus.TenantID) error {
	info, err := h.stream.Info(ctx, jetstream.WithSubjectFilter(bus.PrerecordedJobSubject(t)))
	if err != nil {
		return fmt.Errorf("count queued jobs: %w", err)
	}
	if n := info.State.Subjects[bus.PrerecordedJobSubject(t)]; n >= uint64(h.cfg.MaxJobsPerTenant) {
		return fmt.Errorf("%w: %d callback requests of this tenant are waiting or running; retry when one has finished", ErrTooManyJobs, n)
	}
	return nil
}

// policy is the retention of this request: its own choice, else the tenant's.
func (h *Handler) policy(ctx context.Context, t bus.TenantID, p Params) (privacy.Policy, error) {
	if h.cfg.Retention == nil {
		if p.RetainSet && p.Retain.Keeps() {
			return privacy.Policy{}, wire.BadParam("retain", "retention is not enabled on this server")
		}
		return privacy.Policy{}, nil
	}
	return h.cfg.Retention.Effective(ctx, t, p.Retain, p.RetainSet)
}

func (h *Handler) keep(ctx context.Context, t bus.TenantID, id bus.SessionID, pol privacy.Policy, resp []byte, audio io.Reader) error {
	if h.cfg.Retention == nil || !pol.Keeps() {
		return nil
	}
	return h.cfg.Retention.Keep(ctx, t, id, pol, resp, audio)
}

// readBody spools the upload (at most MaxUpload bytes) or, for {"url": ...}, the
// fetched file to SpoolDir.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (*upload, error) {
	ctype := r.Header.Get("Content-Type")
	if r.ContentLength > h.cfg.MaxUpload {
		return nil, ErrTooLarge
	}
	if isJSON(ctype) {
		var req struct {
			URL string `json:"url"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || req.URL == "" {
			return nil, wire.BadParam("url", `the JSON body must be {"url": "https://..."}`)
		}
		if len(h.cfg.URLAllowList) == 0 {
			return nil, fmt.Errorf("%w: fetching URLs is not enabled on this server (empty URL allow-list)", ErrURLRefused)
		}
		return h.guard.fetch(r.Context(), req.URL, h.cfg.SpoolDir, h.cfg.MaxUpload)
	}
	return spool(h.cfg.SpoolDir, http.MaxBytesReader(w, r.Body, h.cfg.MaxUpload), h.cfg.MaxUpload, ctype)
}

func (h *Handler) response(j job, sum string, samples int, at time.Time, finals []bus.Result) *Response {
	alt := assemble(finals)
	split := j.UttSplit
	if split <= 0 {
		split = wire.DefaultUttSplit
	}
	if j.Paragraphs {
		alt.Paragraphs = paragraphs(alt.Words, split)
	}
	r := &Response{
		Metadata: Metadata{TransactionKey: "deprecated", RequestID: string(j.Request), SHA256: sum,
			Created: at.UTC().Format(time.RFC3339Nano), Duration: round3(float64(samples) / bus.SampleRate),
			Channels: 1, Models: []string{j.Model}},
		Results: Results{Channels: []wire.Channel{{Alternatives: []wire.Alternative{alt}}}},
	}
	if spec, err := lang.Parse(j.Language); err == nil && spec.Detect {
		ch := &r.Results.Channels[0]
		ch.DetectedLanguage, ch.LanguageConfidence = detected(finals, &ch.Alternatives[0])
	}
	if j.Utterances {
		us := utterances(j.Request, 0, alt.Words, split)
		if us == nil {
			us = []Utterance{}
		}
		r.Results.Utterances = &us
	}
	return r
}

// writeResponse answers in the format of the Accept header: JSON, WebVTT or SRT.
func writeResponse(w http.ResponseWriter, r *http.Request, resp *Response, js []byte) {
	accept := r.Header.Get("Accept")
	switch {
	case strings.Contains(accept, "text/vtt"):
		w.Header().Set("Content-Type", "text/vtt; charset=utf-8")
		_, _ = io.WriteString(w, resp.WebVTT())
	case strings.Contains(accept, "application/x-subrip") || strings.Contains(accept, "text/srt"):
		w.Header().Set("Content-Type", "application/x-subrip; charset=utf-8")
		_, _ = io.WriteString(w, resp.SRT())
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(js)
	}
}
