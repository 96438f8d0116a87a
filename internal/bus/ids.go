package bus

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// SessionID names one live stream (or one pre-recorded request) end to end.
type SessionID string

// TenantID names a customer account.
type TenantID string

// WorkerID names one transcriber process.
type WorkerID string

// KeyID names one API key of a tenant (never the secret itself).
type KeyID string

// NewSessionID returns a random 128-bit id in the UUID text form Deepgram uses for request_id.
func NewSessionID() SessionID {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return SessionID(h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32])
}

// ValidToken reports whether s may be used as one NATS subject token: non-empty,
// no dots, no wildcards, no white space. Tenant ids, model names in subjects and
// session ids must pass it, so that one tenant can never subscribe to another's subjects
// by choosing a name.
func ValidToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	return !strings.ContainsAny(s, ".*> \t\r\n")
}

// ValidModel reports whether s may name a model on the bus: like ValidToken, but dots are
// allowed (tiny.en); subjects carry the model through ModelToken.
func ValidModel(s string) bool {
	return s != "" && len(s) <= 64 && !strings.ContainsAny(s, "*> \t\r\n")
}

// ModelToken maps a model name to one subject token ("tiny.en" → "tiny_en").
func ModelToken(model string) string { return strings.ReplaceAll(model, ".", "_") }
