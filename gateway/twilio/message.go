package twilio

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
)

// Event names of Twilio Media Streams messages (Twilio → us).
const (
	EventConnected = "connected"
	EventStart     = "start"
	EventMedia     = "media"
	EventDTMF      = "dtmf"
	EventMark      = "mark"
	EventStop      = "stop"
)

// Track names as Twilio writes them in media.track and start.tracks.
const (
	TrackInbound  = "inbound"  // the caller: audio Twilio receives from the phone
	TrackOutbound = "outbound" // the agent: audio Twilio sends to the phone
)

// FrameBytes is one 20 ms frame of 8 kHz µ-law: Twilio's chunk size. A media payload
// must be a whole number (≥ 1) of frames.
const FrameBytes = 160

// MaxMessageBytes bounds one WebSocket message (a 20 ms frame is ~300 bytes of JSON).
const MaxMessageBytes = 64 << 10

// Message is one Media Streams message. Only the part named by Event is set.
type Message struct {
	Event          string     `json:"event"`
	SequenceNumber string     `json:"sequenceNumber,omitempty"`
	StreamSID      string     `json:"streamSid,omitempty"`
	Protocol       string     `json:"protocol,omitempty"` // connected
	Version        string     `json:"version,omitempty"`  // connected
	Start          *StartInfo `json:"start,omitempty"`
	Media          *MediaInfo `json:"media,omitempty"`
	DTMF           *DTMFInfo  `json:"dtmf,omitempty"`
	Mark           *MarkInfo  `json:"mark,omitempty"`
	Stop           *StopInfo  `json:"stop,omitempty"`

	decoded Media // media: the checked payload (set by ParseMessage)
}

// Decoded returns a media message's checked chunk number, track and audio, as
// ParseMessage decoded them.
func (m *Message) Decoded() Media { return m.decoded }

// StartInfo is the start message's metadata.
type StartInfo struct {
	AccountSID       string            `json:"accountSid"`
	StreamSID        string            `json:"streamSid"`
	CallSID          string            `json:"callSid"`
	Tracks           []string          `json:"tracks"`
	CustomParameters map[string]string `json:"customParameters,omitempty"`
	MediaFormat      MediaFormat       `json:"mediaFormat"`
}

// MediaFormat is the audio format of every media payload of the stream.
type MediaFormat struct {
	Encoding   string `json:"encoding"`
	SampleRate int    `json:"sampleRate"`
	Channels   int    `json:"channels"`
}

// MediaInfo is one chunk of one track. Chunk and Timestamp are decimal strings.
type MediaInfo struct {
	Track     string `json:"track"`
	Chunk     string `json:"chunk"`
	Timestamp string `json:"timestamp"`
	Payload   string `json:"payload"`
}

// DTMFInfo is one key press.
type DTMFInfo struct {
	Track string `json:"track"`
	Digit string `json:"digit"`
}

// MarkInfo names a point in the outbound audio.
type MarkInfo struct {
	Name string `json:"name"`
}

// StopInfo ends the stream.
type StopInfo struct {
	AccountSID string `json:"accountSid"`
	CallSID    string `json:"callSid"`
}

// Media is a decoded, checked media message.
type Media struct {
	Track       string
	Chunk       uint64
	TimestampMs uint64
	Audio       []byte // µ-law, a whole number of FrameBytes frames
}

// ParseMessage decodes one text message from Twilio and checks the fields the event
// needs: start has a callSid, streamSid and tracks; media a known track, a chunk
// number ≥ 1 and a base64 payload of whole 160-byte frames; dtmf and mark their
// fields. Unknown events parse without error (the caller ignores them). Errors wrap
// ErrProtocol.
func ParseMessage(b []byte) (*Message, error) {
	if len(b) > MaxMessageBytes {
		return nil, fmt.Errorf("%w: message of %d bytes", ErrProtocol, len(b))
	}
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: not a JSON message: %v", ErrProtocol, err)
	}
	switch m.Event {
	case "":
		return nil, fmt.Errorf("%w: message without event", ErrProtocol)
	case EventStart:
		if m.Start == nil {
			return nil, fmt.Errorf("%w: start without start object", ErrProtocol)
		}
		if m.Start.CallSID == "" {
			return nil, fmt.Errorf("%w: start without callSid", ErrProtocol)
		}
		if m.Start.StreamSID == "" {
			m.Start.StreamSID = m.StreamSID
		}
		if len(m.Start.Tracks) == 0 {
			m.Start.Tracks = []string{TrackInbound} // Twilio's default
		}
		seen := map[string]bool{}
		for _, t := range m.Start.Tracks {
			t = normTrack(t)
			if t != TrackInbound && t != TrackOutbound {
				return nil, fmt.Errorf("%w: start names unknown track %q", ErrProtocol, t)
			}
			seen[t] = true
		}
		m.Start.Tracks = m.Start.Tracks[:0]
		for _, t := range []string{TrackInbound, TrackOutbound} {
			if seen[t] {
				m.Start.Tracks = append(m.Start.Tracks, t)
			}
		}
	case EventMedia:
		if m.Media == nil {
			return nil, fmt.Errorf("%w: media without media object", ErrProtocol)
		}
		d, err := m.Media.Decode()
		if err != nil {
			return nil, err
		}
		m.decoded = d
	case EventDTMF:
		if m.DTMF == nil || m.DTMF.Digit == "" {
			return nil, fmt.Errorf("%w: dtmf without digit", ErrProtocol)
		}
	case EventMark:
		if m.Mark == nil {
			return nil, fmt.Errorf("%w: mark without mark object", ErrProtocol)
		}
	}
	return &m, nil
}

// Decode checks and decodes a media message's fields.
func (mi *MediaInfo) Decode() (Media, error) {
	track := normTrack(mi.Track)
	if track != TrackInbound && track != TrackOutbound {
		return Media{}, fmt.Errorf("%w: media of unknown track %q", ErrProtocol, mi.Track)
	}
	chunk, err := strconv.ParseUint(mi.Chunk, 10, 64)
	if err != nil || chunk == 0 {
		return Media{}, fmt.Errorf("%w: media chunk %q is not a number ≥ 1", ErrProtocol, mi.Chunk)
	}
	var ts uint64
	if mi.Timestamp != "" {
		if ts, err = strconv.ParseUint(mi.Timestamp, 10, 64); err != nil {
			return Media{}, fmt.Errorf("%w: media timestamp %q is not a number", ErrProtocol, mi.Timestamp)
		}
	}
	audio, err := base64.StdEncoding.DecodeString(mi.Payload)
	if err != nil {
		return Media{}, fmt.Errorf("%w: media chunk %d payload is not base64: %v", ErrProtocol, chunk, err)
	}
	if len(audio) == 0 || len(audio)%FrameBytes != 0 {
		return Media{}, fmt.Errorf("%w: media chunk %d payload of %d bytes is not a multiple of %d (20 ms of 8 kHz µ-law)",
			ErrProtocol, chunk, len(audio), FrameBytes)
	}
	return Media{Track: track, Chunk: chunk, TimestampMs: ts, Audio: audio}, nil
}

// normTrack maps Twilio's "inbound_track"/"outbound_track" spellings (used in dtmf
// and in TwiML) to the media track names.
func normTrack(t string) string {
	switch t {
	case "inbound_track":
		return TrackInbound
	case "outbound_track":
		return TrackOutbound
	}
	return t
}

// Speaker is the label of a track in transcripts: the caller is on the inbound track,
// the agent on the outbound one.
func Speaker(track string) string {
	if normTrack(track) == TrackOutbound {
		return "agent"
	}
	return "caller"
}
