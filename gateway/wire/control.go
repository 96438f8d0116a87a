package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// MaxControlBytes is the largest text frame a client may send.
const MaxControlBytes = 64 << 10

// Control message types (the "type" field of a client text frame).
const (
	ControlKeepAlive   = "KeepAlive"
	ControlFinalize    = "Finalize"
	ControlCloseStream = "CloseStream"
)

// Control is a parsed client text frame. Channel is set only when a Finalize names
// one channel (Deepgram's optional "channel" field); nil means every channel.
type Control struct {
	Type    string `json:"type"`
	Channel *int   `json:"channel,omitempty"`
}

// ParseControl parses one client text frame. Unknown fields are ignored (clients add
// their own); an unknown type is ErrUnknownControl, anything else malformed ErrBadControl.
func ParseControl(b []byte) (Control, error) {
	if len(b) > MaxControlBytes {
		return Control{}, fmt.Errorf("%w: %d bytes (max %d)", ErrControlTooLarge, len(b), MaxControlBytes)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return Control{}, fmt.Errorf("%w: not a JSON object", ErrBadControl)
	}
	var raw struct {
		Type    *string          `json:"type"`
		Channel *json.RawMessage `json:"channel"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return Control{}, fmt.Errorf("%w: %v", ErrBadControl, err)
	}
	if raw.Type == nil {
		return Control{}, fmt.Errorf("%w: no \"type\" field", ErrBadControl)
	}
	c := Control{Type: *raw.Type}
	switch c.Type {
	case ControlKeepAlive, ControlCloseStream:
	case ControlFinalize:
		if raw.Channel != nil && string(*raw.Channel) != "null" {
			var ch int
			if err := json.Unmarshal(*raw.Channel, &ch); err != nil || ch < 0 || ch > 255 {
				return Control{}, fmt.Errorf("%w: \"channel\" must be an integer 0..255", ErrBadControl)
			}
			c.Channel = &ch
		}
	default:
		t := c.Type
		if len(t) > 64 {
			t = t[:64] + "…"
		}
		return Control{}, fmt.Errorf("%w: %q (known: KeepAlive, Finalize, CloseStream)", ErrUnknownControl, t)
	}
	return c, nil
}
