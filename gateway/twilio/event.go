package twilio

import (
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

// Call event types (CallEvent.Type).
const (
	TypePartial = "transcript.partial"
	TypeFinal   = "transcript.final"
	TypeSummary = "call.summary"
	TypeError   = "call.error"
	// Turn-taking events (calls with turn-taking on; docs/phone.md, "Turn-taking").
	TypeTurnStart   = "turn.start"   // a speaker's turn began (Flux StartOfTurn)
	TypeTurnUpdate  = "turn.update"  // the turn's transcript so far (only with turn_updates)
	TypeTurnEager   = "turn.eager"   // the turn has probably ended: its final transcript, speculatively
	TypeTurnResumed = "turn.resumed" // the speaker went on after turn.eager: discard it
	TypeTurnEnd     = "turn.end"     // the turn ended: its transcript
	TypeBargeIn     = "barge_in"     // the caller began a turn while the agent was speaking
)

// CallEvent is what a tenant receives, as JSON, on its webhook and on NATS
// bus.CallSubject(tenant, callSid). Seq counts a call's events from 1 in delivery order.
type CallEvent struct {
	Type      string       `json:"type"`
	Seq       uint64       `json:"seq"`
	Tenant    bus.TenantID `json:"tenant"`
	CallSID   string       `json:"call_sid"`
	StreamSID string       `json:"stream_sid"`
	Speaker   string       `json:"speaker,omitempty"` // "caller" (inbound track) or "agent" (outbound)
	Track     string       `json:"track,omitempty"`
	Text      string       `json:"text,omitempty"`
	Start     float64      `json:"start"` // seconds from the start of the call's audio
	End       float64      `json:"end"`
	IsFinal   bool         `json:"is_final"`
	Words     []bus.Word   `json:"words,omitempty"`
	Error     string       `json:"error,omitempty"`
	Summary   *CallSummary `json:"summary,omitempty"`
	// Turn-taking events (turn.*, barge_in). TurnIndex counts the speaker's turns from
	// 0; EOTConfidence is the end-of-turn probability (turn.update, turn.eager,
	// turn.end); Trigger says why a turn ended (turn.end: model, timeout, close).
	TurnIndex     *int     `json:"turn_index,omitempty"`
	EOTConfidence *float64 `json:"end_of_turn_confidence,omitempty"`
	Trigger       string   `json:"trigger,omitempty"`
	// SpeechAt is where, in seconds of the call's audio, the voice activity detector
	// saw the speech begin (turn.start, barge_in) or end (turn.eager, turn.end,
	// turn.resumed: where the speech that resumed the turn was).
	SpeechAt *float64 `json:"speech_at,omitempty"`
	// LatencyMs is the time from the arrival at the gateway of the media chunk holding
	// SpeechAt to the moment this event was emitted (At), by the gateway's clock.
	LatencyMs *int64 `json:"latency_ms,omitempty"`
	// Interrupted is the agent's turn a barge_in talked over.
	Interrupted *Interrupted `json:"interrupted,omitempty"`
	At          time.Time    `json:"at"`
}

// Interrupted names the turn a barge_in cut into.
type Interrupted struct {
	Speaker   string `json:"speaker"`
	Track     string `json:"track"`
	TurnIndex int    `json:"turn_index"`
	// Text is that turn's transcript as last reported (turn.update or turn.eager;
	// empty when none came yet).
	Text string `json:"text,omitempty"`
}

// Turn is one final utterance of one speaker or, on a call with turn-taking on, one
// ended turn (turn.end).
type Turn struct {
	Speaker string  `json:"speaker"`
	Start   float64 `json:"start"`
	End     float64 `json:"end"`
	Text    string  `json:"text"`
	// BargeIn marks a turn that began while the agent was speaking (turn-taking only).
	BargeIn bool `json:"barge_in,omitempty"`
}

// TurnTaking is the turn-taking part of a call summary: the options the call ran with
// and how often the caller barged in.
type TurnTaking struct {
	EOTThreshold      float64 `json:"eot_threshold"`
	EagerEOTThreshold float64 `json:"eager_eot_threshold,omitempty"`
	EOTTimeoutMs      int     `json:"eot_timeout_ms"`
	Updates           bool    `json:"turn_updates,omitempty"`
	BargeIns          int     `json:"barge_ins"`
	// BargeInLatencyMs lists each barge_in's latency_ms in order (at most 100 kept).
	BargeInLatencyMs []int64 `json:"barge_in_latency_ms,omitempty"`
}

// CallSummary closes a call: the full transcript as speaker turns ordered by start
// time, and what the call cost and lasted.
type CallSummary struct {
	Transcript string           `json:"transcript"` // "caller: …\nagent: …", one line per turn
	Turns      []Turn           `json:"turns"`
	Speakers   []string         `json:"speakers"`
	AudioMs    map[string]int64 `json:"audio_ms"`    // billed audio per speaker
	DurationMs int64            `json:"duration_ms"` // longest track, gap fill included
	Words      map[string]int   `json:"words"`       // words per speaker
	StartedAt  time.Time        `json:"started_at"`  // start message received
	EndedAt    time.Time        `json:"ended_at"`    // all finals in
	Reason     string           `json:"reason"`      // "stop", "idle_timeout", "disconnected", "error", "shutdown"
	DTMF       string           `json:"dtmf,omitempty"`
	Marks      []string         `json:"marks,omitempty"`
	// EventsNotKept counts mark and dtmf events past MaxMarks/MaxDTMF (not in Marks/DTMF).
	EventsNotKept int            `json:"events_not_kept,omitempty"`
	Lost          map[string]int `json:"lost_chunks,omitempty"`      // chunks filled with silence, per speaker
	Duplicates    map[string]int `json:"duplicate_chunks,omitempty"` // chunks dropped as duplicates
	Dropped       int            `json:"dropped_partials,omitempty"` // partials and turn.update not delivered (queue full)
	// TurnTaking is set on calls with turn-taking on; Turns are then the ended turns.
	TurnTaking *TurnTaking `json:"turn_taking,omitempty"`
}

// DeadLetter is published on bus.CallDeadLetterSubject with the undelivered event.
type DeadLetter struct {
	Tenant    bus.TenantID `json:"tenant"`
	CallSID   string       `json:"call_sid"`
	URL       string       `json:"url"`
	Attempts  int          `json:"attempts"`
	LastError string       `json:"last_error"`
	Event     *CallEvent   `json:"event"`
}
