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
)

// CallEvent is what a tenant receives, as JSON, on its webhook and on NATS
// CallSubject(tenant, callSid). Seq counts a call's events from 1 in delivery order.
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
	At        time.Time    `json:"at"`
}

// Turn is one final utterance of one speaker.
type Turn struct {
	Speaker string  `json:"speaker"`
	Start   float64 `json:"start"`
	End     float64 `json:"end"`
	Text    string  `json:"text"`
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
	Dropped       int            `json:"dropped_partials,omitempty"` // partials not delivered (queue full)
}

// CallSubject is the NATS subject every event of a call is published on.
func CallSubject(tenant bus.TenantID, callSID string) string {
	return bus.Prefix + ".calls." + string(tenant) + "." + callSID
}

// DeadLetterSubject receives events the tenant's webhook did not accept.
func DeadLetterSubject(tenant bus.TenantID) string {
	return bus.Prefix + ".twilio.dead." + string(tenant)
}

// DeadLetter is published on DeadLetterSubject with the undelivered event.
type DeadLetter struct {
	Tenant    bus.TenantID `json:"tenant"`
	CallSID   string       `json:"call_sid"`
	URL       string       `json:"url"`
	Attempts  int          `json:"attempts"`
	LastError string       `json:"last_error"`
	Event     *CallEvent   `json:"event"`
}
