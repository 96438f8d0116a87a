package bus

import (
	"fmt"
	"math"
	"time"
)

// SampleRate is the rate of every audio sample on the bus: 16 kHz mono float/int16,
// what whisper consumes. The gateway converts whatever the client sends.
const SampleRate = 16000

// SamplesPerMs is SampleRate / 1000.
const SamplesPerMs = SampleRate / 1000

// Priority orders work on a worker: live streams before pre-recorded files.
type Priority int

const (
	PriorityLive  Priority = 0
	PriorityBatch Priority = 1
)

// StreamOptions are the client's choices that change what the worker emits.
type StreamOptions struct {
	Language       string   `json:"language,omitempty"`
	InterimResults bool     `json:"interim_results"`
	EndpointingMs  int      `json:"endpointing_ms"` // silence that ends an utterance; <0 disables VAD finals
	UtteranceEndMs int      `json:"utterance_end_ms,omitempty"`
	VADEvents      bool     `json:"vad_events,omitempty"`
	Redact         []string `json:"redact,omitempty"`
	// Keyterms bias decoding towards these terms (keyterm= and keywords=): they go into
	// whisper's prompt ahead of the stream's earlier text.
	Keyterms []string `json:"keyterms,omitempty"`
	// Turns, when set, makes the session a turn-taking one (GET /v2/listen, Deepgram
	// Flux's protocol): the worker emits ResultTurn events besides its partials and
	// finals, ends an utterance only when its turn ends (end-of-turn model, timeout or
	// a Finalize chunk, which means ForceEndTurn here), and ignores EndpointingMs.
	Turns *TurnOptions `json:"turns,omitempty"`
}

// TurnOptions are Flux's end-of-turn knobs (docs/api.md, "Turn-taking").
type TurnOptions struct {
	// EOTThreshold is the end-of-turn probability at which a turn ends (0.5–1.0;
	// 1.0 never ends a turn on the model's word: only the timeout or ForceEndTurn).
	EOTThreshold float64 `json:"eot_threshold"`
	// EagerEOTThreshold, when non-zero (0.3–0.9, ≤ EOTThreshold), is the probability at
	// which an EagerEndOfTurn is emitted, with a final transcript decoded speculatively.
	EagerEOTThreshold float64 `json:"eager_eot_threshold,omitempty"`
	// EOTTimeoutMs ends a turn after this much silence whatever the model says
	// (500–60000, Deepgram Flux's range; the worker holds at most the last 8 s of audio
	// of a pause, so a long timeout costs no memory).
	EOTTimeoutMs int `json:"eot_timeout_ms"`
}

// Turn-taking defaults and bounds: Deepgram Flux's documented ranges.
const (
	DefaultEOTThreshold  = 0.7
	DefaultEOTTimeoutMs  = 5000
	MinEOTThreshold      = 0.5
	MaxEOTThreshold      = 1.0
	MinEagerEOTThreshold = 0.3
	MaxEagerEOTThreshold = 0.9
	MinEOTTimeoutMs      = 500
	MaxEOTTimeoutMs      = 60000
)

// Check reports the first knob out of range: the parameter's name and why; "" when
// every knob is in range. Zero values are not defaults here: fill them first.
func (o TurnOptions) Check() (param, reason string) {
	switch {
	case math.IsNaN(o.EOTThreshold) || o.EOTThreshold < MinEOTThreshold || o.EOTThreshold > MaxEOTThreshold:
		return "eot_threshold", fmt.Sprintf("%v is out of range %v..%v", o.EOTThreshold, MinEOTThreshold, MaxEOTThreshold)
	case math.IsNaN(o.EagerEOTThreshold) || o.EagerEOTThreshold != 0 &&
		(o.EagerEOTThreshold < MinEagerEOTThreshold || o.EagerEOTThreshold > MaxEagerEOTThreshold):
		return "eager_eot_threshold", fmt.Sprintf("%v is out of range %v..%v", o.EagerEOTThreshold, MinEagerEOTThreshold, MaxEagerEOTThreshold)
	case o.EagerEOTThreshold > o.EOTThreshold:
		return "eager_eot_threshold", fmt.Sprintf("%v is above eot_threshold %v; an eager end of turn must come first", o.EagerEOTThreshold, o.EOTThreshold)
	case o.EOTTimeoutMs < MinEOTTimeoutMs || o.EOTTimeoutMs > MaxEOTTimeoutMs:
		return "eot_timeout_ms", fmt.Sprintf("%d is out of range %d..%d", o.EOTTimeoutMs, MinEOTTimeoutMs, MaxEOTTimeoutMs)
	}
	return "", ""
}

// SessionRequest asks any worker with a free slot for Model to take a session.
// A worker subscribes to AudioSubject(Tenant, Session) BEFORE it replies, so no chunk
// published after the grant is missed.
type SessionRequest struct {
	Session  SessionID     `json:"session"`
	Tenant   TenantID      `json:"tenant"`
	Key      KeyID         `json:"key,omitempty"`
	Model    string        `json:"model"`
	Channels int           `json:"channels"` // independent channels the worker transcribes (1 unless multichannel)
	Options  StreamOptions `json:"options"`
	Priority Priority      `json:"priority"`
	// ResumeSample is the stream position (16 kHz samples, per channel) of the first
	// chunk the worker will receive: non-zero when a gateway replays audio to a new
	// worker after a failover. Result times stay relative to the start of the stream.
	ResumeSample uint64 `json:"resume_sample,omitempty"`
	// Prompt is committed text before ResumeSample, used as decoding context.
	Prompt string `json:"prompt,omitempty"`
	// Committed is, per channel, the stream position up to which finals were already
	// delivered. The replay starts up to half a second before it, so that the first
	// word after it is decoded with its run-up (whisper tends to drop a word the audio
	// starts on); words before it are context only and not sent again.
	Committed []uint64 `json:"committed,omitempty"`
}

// SessionGrant is the worker's reply. Code is empty on success.
type SessionGrant struct {
	Session SessionID `json:"session"`
	Worker  WorkerID  `json:"worker"`
	Code    ErrorCode `json:"code,omitempty"`
	Message string    `json:"message,omitempty"`
}

// ResultType says what a Result carries.
type ResultType string

const (
	ResultPartial       ResultType = "partial"        // interim text for the open utterance
	ResultFinal         ResultType = "final"          // settled text for [Start, End)
	ResultSpeechStarted ResultType = "speech_started" // VAD saw speech start at Start
	ResultUtteranceEnd  ResultType = "utterance_end"  // silence after the last word (LastWordEnd)
	ResultError         ResultType = "error"          // the worker cannot continue the session
	ResultClosed        ResultType = "closed"         // the worker has emitted everything for an End chunk
	// ResultSettled says the worker will never need the audio before EndSample again:
	// nothing is open there (silence, music, noise with no utterance). The gateway's
	// ingest client trims its replay buffer with it, as with a final, so that a long
	// stretch without speech cannot fill it. Internal: never delivered to clients.
	ResultSettled ResultType = "settled"
	// ResultResend asks the gateway to publish again the audio chunks ResendFrom through
	// ResendTo (session seqs): the worker saw a gap in the chunk sequence (chunks lost in
	// transit: core NATS does not persist them, and a server restart or a route flap
	// drops what is in flight). The gateway answers from its replay buffer. Internal:
	// never delivered to clients.
	ResultResend ResultType = "resend"
	// ResultTurn is a turn-taking event (sessions with StreamOptions.Turns): Event says
	// which, TurnIndex which turn, Text and Words the turn's transcript so far (the
	// final one on EagerEndOfTurn and EndOfTurn), Start/Duration the turn's audio
	// window, EOTConfidence the end-of-turn probability.
	ResultTurn ResultType = "turn"
)

// TurnEvent names, as in Deepgram Flux's TurnInfo messages.
const (
	TurnStart   = "StartOfTurn"
	TurnUpdate  = "Update"
	TurnEager   = "EagerEndOfTurn"
	TurnResumed = "TurnResumed"
	TurnEnd     = "EndOfTurn"
)

// Why a turn ended (Result.Trigger on EndOfTurn).
const (
	TriggerModel   = "model"   // the end-of-turn probability reached eot_threshold
	TriggerTimeout = "timeout" // eot_timeout_ms of silence
	TriggerManual  = "manual"  // the client sent ForceEndTurn (a Finalize chunk)
	TriggerClose   = "close"   // the stream ended inside a turn
)

// Word is one recognised word; times are seconds from the start of the stream.
type Word struct {
	Word       string  `json:"word"`
	Start      float64 `json:"start"`
	End        float64 `json:"end"`
	Confidence float64 `json:"confidence"`
	Punctuated string  `json:"punctuated_word"`
}

// Result is what a worker publishes on ResultSubject. Seq increases by one per result of
// a session (per worker incarnation), so a consumer can detect loss and order.
type Result struct {
	Type         ResultType `json:"type"`
	Session      SessionID  `json:"session"`
	Worker       WorkerID   `json:"worker"`
	Seq          uint64     `json:"seq"`
	Channel      int        `json:"channel"`
	Start        float64    `json:"start"`    // seconds from stream start
	Duration     float64    `json:"duration"` // seconds
	Text         string     `json:"text,omitempty"`
	Words        []Word     `json:"words,omitempty"`
	Confidence   float64    `json:"confidence,omitempty"`
	StableWords  int        `json:"stable_words,omitempty"` // partials: leading words that will not change
	SpeechFinal  bool       `json:"speech_final,omitempty"` // final caused by endpointing (a pause)
	FromFinalize bool       `json:"from_finalize,omitempty"`
	LastWordEnd  float64    `json:"last_word_end,omitempty"`
	// Language is whisper's code of the language the result was decoded in;
	// LanguageConfidence the probability of that language when it was detected
	// (language=multi), else 0.
	Language           string  `json:"language,omitempty"`
	LanguageConfidence float64 `json:"language_confidence,omitempty"`
	// EndSample is the stream position (16 kHz samples) up to which audio is settled by
	// this final: the gateway drops its replay buffer up to here.
	EndSample uint64 `json:"end_sample,omitempty"`
	// AudioSeq is the last audio chunk seq included when this result was computed.
	AudioSeq uint64 `json:"audio_seq"`
	// Timing of the hops, unix nanoseconds, for transport-overhead measurement.
	ChunkSentNs  int64     `json:"chunk_sent_ns,omitempty"`  // gateway sent the chunk AudioSeq
	WorkerRecvNs int64     `json:"worker_recv_ns,omitempty"` // worker received it
	WorkerSentNs int64     `json:"worker_sent_ns,omitempty"` // worker published this result
	Code         ErrorCode `json:"code,omitempty"`
	Message      string    `json:"message,omitempty"`
	// ResendFrom and ResendTo bound a ResultResend (inclusive).
	ResendFrom uint64 `json:"resend_from,omitempty"`
	ResendTo   uint64 `json:"resend_to,omitempty"`
	// Turn events (ResultTurn): the event, the turn it belongs to (from 0), the
	// end-of-turn probability, why an EndOfTurn came (Trigger*), and for latency
	// measurement the stream position (16 kHz samples) where the VAD saw the speech of
	// the turn end (EagerEndOfTurn, EndOfTurn) or start (StartOfTurn).
	Event         string  `json:"event,omitempty"`
	TurnIndex     int     `json:"turn_index,omitempty"`
	EOTConfidence float64 `json:"end_of_turn_confidence,omitempty"`
	Trigger       string  `json:"trigger,omitempty"`
	SpeechAt      uint64  `json:"speech_at,omitempty"`
}

// Capacity of one model on one worker.
type Capacity struct {
	Slots int `json:"slots"`
	Free  int `json:"free"`
}

// Heartbeat is published by every worker every HeartbeatInterval.
type Heartbeat struct {
	Worker   WorkerID            `json:"worker"`
	Models   map[string]Capacity `json:"models"`
	Sessions []SessionID         `json:"sessions"`
	Draining bool                `json:"draining,omitempty"`
	SentAt   time.Time           `json:"sent_at"`
}

// Control is a gateway's instruction to one worker, on ControlSubject(worker).
type Control struct {
	Type    string    `json:"type"` // ControlRelease
	Tenant  TenantID  `json:"tenant"`
	Session SessionID `json:"session"`
	// Worker serves the session now (for ControlRelease).
	Worker WorkerID `json:"worker"`
	// Turns are the new knobs (ControlConfigure).
	Turns *TurnOptions `json:"turns,omitempty"`
}

// ControlRelease tells a worker that a session it holds is served by another worker
// now (the gateway failed it over while this one was only unreachable, or a grant came
// after its request had been given up): the worker drops it without a result, freeing
// the slot and the decoding its copy of the audio would cost.
const ControlRelease = "release"

// ControlConfigure changes a turn-taking session's end-of-turn knobs mid-stream
// (Flux's Configure message): Turns holds the new values, all of them. The gateway
// keeps them for a failover's SessionRequest too.
const ControlConfigure = "configure"

// HeartbeatInterval and WorkerLostAfter bound failover detection: a gateway treats a
// worker as lost when no heartbeat listing a session came for WorkerLostAfter.
const (
	HeartbeatInterval = 500 * time.Millisecond
	WorkerLostAfter   = 2 * time.Second
)

// UsageEvent records audio accepted into a session: DurationMs of audio starting at
// StartMs of the session's stream (per track/channel). ID is deterministic
// (UsageEventID over Conn, or Session when Conn is empty) so a re-publish is
// deduplicated by JetStream and by billing. Every event is billed in full: what a
// resumed connection is not billed for (audio an earlier connection of the stream paid
// for and never got a final for) the gateway leaves out of its events, so that no client
// can choose what it is charged (billing.Resumes).
type UsageEvent struct {
	ID      string    `json:"id"`
	Tenant  TenantID  `json:"tenant"`
	Key     KeyID     `json:"key,omitempty"`
	Model   string    `json:"model"`
	Session SessionID `json:"session"`
	// Conn is the connection (request_id) that accepted the audio: Session on a new
	// stream, a later request_id on a connection that resumes Session.
	Conn       SessionID `json:"conn,omitempty"`
	Call       string    `json:"call,omitempty"`  // phone call id (Twilio callSid)
	Track      string    `json:"track,omitempty"` // phone track or channel name
	StartMs    int64     `json:"start_ms"`
	DurationMs int64     `json:"duration_ms"`
	Final      bool      `json:"final,omitempty"` // last event of the session
	At         time.Time `json:"at"`
}

// UsageEventID is the deterministic id of the usage event covering [startMs,
// startMs+durationMs) of track, metered by connection s (the event's Conn, or its
// Session on a connection that resumes nothing). The connection is part of the id:
// the events of a connection that resumes a stream are never taken for those of the
// connection it resumes.
func UsageEventID(s SessionID, track string, startMs, durationMs int64) string {
	if track == "" {
		track = "0"
	}
	return string(s) + ":" + track + ":" + itoa(startMs) + ":" + itoa(startMs+durationMs)
}

func itoa(v int64) string {
	if v == 0 {
		return "0"
	}
	neg := v < 0
	if neg {
		v = -v
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
