package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/redis/go-redis/v9"
)

// ResumeWindow is how long after its connection last marked it a stream can be
// resumed: a client that lost its connection (a gateway crash, a network drop)
// reconnects within seconds; after the window the record is gone and a resume is
// refused (the client starts a new stream, billed in full).
const ResumeWindow = 60 * time.Second

// ErrNoResume means the stream named in a resume is not one the caller may resume: it
// never existed, belongs to another tenant, or its window has passed.
var ErrNoResume = errors.New("no resumable stream")

// Resumes keeps one record per live or recently ended stream, in Redis so that it holds
// across gateways:
//
//	resume:{t}:<stream>   hash owner (the connection marking it), b, f, p (stream ms);
//	                      TTL ResumeWindow, refreshed by each mark
//
// b is the stream time up to which the owner's audio is billed (acknowledged by
// JetStream) or was credited to it, f the end of the last final the owner delivered, p
// the end of the credit the owner itself received. A connection that resumes the stream
// at offset o is not billed for [max(o, f, p), b): audio an earlier connection paid for
// and never got a final for. The claim is atomic and moves p to b, so no audio is
// credited twice, and it makes the new connection the owner (marks by the old one are
// ignored from then on). Over any sequence of resumes, the unbilled audio is at most
// the audio earlier connections paid for without a final. Safe for concurrent use.
type Resumes struct {
	rdb    redis.UniversalClient
	window time.Duration
}

// NewResumes wraps a Redis client; window 0 means ResumeWindow.
func NewResumes(rdb redis.UniversalClient, window time.Duration) *Resumes {
	if window <= 0 {
		window = ResumeWindow
	}
	return &Resumes{rdb: rdb, window: window}
}

func resumeKey(t bus.TenantID, stream bus.SessionID) string {
	return "resume:{" + string(t) + "}:" + string(stream)
}

// Credit is the stretch [FromMs, ToMs) of stream time a resuming connection is not
// billed for; empty when ToMs <= FromMs.
type Credit struct{ FromMs, ToMs int64 }

// Ms is the length of the credit.
func (c Credit) Ms() int64 { return max(0, c.ToMs-c.FromMs) }

var claimScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'owner', 'b', 'f', 'p')
if not r[1] then return -1 end
local o, runup = tonumber(ARGV[2]), tonumber(ARGV[4])
local b, f, p = tonumber(r[2]) or 0, tonumber(r[3]) or 0, tonumber(r[4]) or 0
-- Run-up: audio resent before the last final's end so that the next word is decoded
-- whole; the worker drops its words, so it is credited, when it reaches f.
if runup > 0 and o < f and o + runup >= f then f = o end
local from = math.max(o, f, p)
local to = math.max(from, b)
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'p', string.format('%d', to), 'b', string.format('%d', to))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {string.format('%d', from), string.format('%d', to)}
`)

var markScript = redis.NewScript(`
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return 0 end
if not owner and ARGV[4] == '0' then return 0 end
local f = math.max(tonumber(ARGV[3]), tonumber(redis.call('HGET', KEYS[1], 'f')) or 0)
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'b', ARGV[2], 'f', string.format('%d', f))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`)

// Begin creates the record of a new stream (the connection conn is its first).
func (r *Resumes) Begin(ctx context.Context, t bus.TenantID, stream bus.SessionID) error {
	return r.mark(ctx, t, stream, stream, 0, 0, true)
}

// Claim makes conn the owner of stream's record and returns the credit of a
// connection whose audio starts at offsetMs of the stream, its first runUpMs being
// run-up before the last final's end (not transcribed again: credited when it reaches
// that end). It fails with ErrNoResume when tenant t has no record of stream.
func (r *Resumes) Claim(ctx context.Context, t bus.TenantID, stream, conn bus.SessionID, offsetMs, runUpMs int64) (Credit, error) {
	res, err := claimScript.Run(ctx, r.rdb, []string{resumeKey(t, stream)}, string(conn), offsetMs, r.window.Milliseconds(), runUpMs).Result()
	if err != nil {
		return Credit{}, fmt.Errorf("claim resume of %s: %w", stream, err)
	}
	parts, ok := res.([]any)
	if !ok || len(parts) != 2 {
		return Credit{}, fmt.Errorf("%w: %s is not a stream of tenant %s that ended in the last %v", ErrNoResume, stream, t, r.window)
	}
	var c Credit
	if _, err := fmt.Sscan(fmt.Sprint(parts[0]), &c.FromMs); err != nil {
		return Credit{}, fmt.Errorf("claim resume of %s: %w", stream, err)
	}
	if _, err := fmt.Sscan(fmt.Sprint(parts[1]), &c.ToMs); err != nil {
		return Credit{}, fmt.Errorf("claim resume of %s: %w", stream, err)
	}
	return c, nil
}

// Mark records conn's progress on stream: billedMs (stream time up to which its audio is
// billed or credited) and finalMs (end of the last final delivered; f only grows). A
// connection that is no longer the owner (another one resumed the stream) changes
// nothing.
func (r *Resumes) Mark(ctx context.Context, t bus.TenantID, stream, conn bus.SessionID, billedMs, finalMs int64) error {
	return r.mark(ctx, t, stream, conn, billedMs, finalMs, false)
}

func (r *Resumes) mark(ctx context.Context, t bus.TenantID, stream, conn bus.SessionID, billedMs, finalMs int64, create bool) error {
	c := "0"
	if create {
		c = "1"
	}
	if err := markScript.Run(ctx, r.rdb, []string{resumeKey(t, stream)}, string(conn), billedMs, finalMs, c, r.window.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("mark resume record of %s: %w", stream, err)
	}
	return nil
}
