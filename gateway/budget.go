package gateway

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/earshot-dev/earshot/gateway/wire"
)

// QuotaHolder is a Quota that also reserves the audio live connections may send, in a
// store every gateway shares (in production billing.Quota.Hold on Redis), so that a
// tenant's balance or included hours cut its streams off where they run out, however
// many streams and gateways there are, instead of a recheck interval later per stream.
//
// Hold: connection s (member names it) has sent billable ms (all channels, as its usage
// events bill them) and wants up to want ms more; limit (≥ billable) is what it may
// send in all. unlimited: the plan has no cap, nothing is held. When nothing more is
// left, err wraps ErrNoBalance or ErrQuotaExhausted and limit is what may still be sent;
// any other error means the store could not be asked. ReleaseHold ends the hold at the
// connection's final billable ms. Safe for concurrent use.
type QuotaHolder interface {
	Hold(ctx context.Context, s SessionInfo, member string, billable, want int64) (limit int64, unlimited bool, err error)
	ReleaseHold(ctx context.Context, s SessionInfo, member string, billable int64) error
}

const (
	holdAsk   = 10_000           // billable ms a connection asks for at a time
	holdLow   = 3_000            // ask again when less than this is left
	holdRenew = 10 * time.Second // renew the hold at least this often (it lives 45 s)
	holdRetry = time.Second      // after a refusal, ask again at most this often
	holdCall  = 2 * time.Second  // one call to the store
)

// Budget is one connection's share of its tenant's quota (QuotaHolder). The reader asks
// allow before accepting a frame; relayLoop calls renew on a ticker so that a quiet
// stream keeps its hold. Safe for concurrent use.
type Budget struct {
	h      QuotaHolder
	info   SessionInfo
	log    interface{ Warn(string, ...any) }
	mu     sync.Mutex
	limit  int64
	last   time.Time // of the last answer from the store
	refuse error     // the store's last refusal
	short  bool      // the store's last answer gave less than asked: ask again after holdRetry
	prev   int64     // billable at the last allow
	frame  int64     // the largest frame seen, in billable ms
	failed bool      // the store could not be asked (logged once per outage)
}

// OpenBudget takes the connection's first hold. A nil budget means the plan is not
// capped (or the Quota cannot hold): nothing to enforce beyond Quota.Check. An error
// wrapping ErrNoBalance/ErrQuotaExhausted: the tenant's other streams hold what is left.
func OpenBudget(ctx context.Context, q Quota, info SessionInfo, log interface{ Warn(string, ...any) }) (*Budget, error) {
	h, ok := q.(QuotaHolder)
	if !ok {
		return nil, nil
	}
	b := &Budget{h: h, info: info, log: log}
	cctx, cancel := context.WithTimeout(ctx, holdCall)
	defer cancel()
	limit, unlimited, err := h.Hold(cctx, info, string(info.Session), 0, holdAsk)
	switch {
	case unlimited:
		return nil, nil
	case err == nil:
		b.limit, b.last = limit, time.Now()
		return b, nil
	case refusal(err):
		if limit > 0 {
			b.limit, b.last, b.refuse = limit, time.Now(), err
			return b, nil
		}
		return nil, err
	default:
		// The store is away: the stream may start (as Quota.Check let it) on a local
		// grant, and asks again as it goes.
		log.Warn("quota hold unavailable; streaming on a local grant", "err", err)
		b.limit, b.last, b.failed = holdAsk, time.Now(), true
		return b, nil
	}
}

func refusal(err error) bool {
	return errors.Is(err, ErrNoBalance) || errors.Is(err, ErrQuotaExhausted)
}

// Allow says whether the connection, having sent billable ms, may accept another frame:
// nil, or the refusal (wrapping ErrNoBalance/ErrQuotaExhausted) once the next frame
// would pass the limit and the store gave no more. It asks for more when less than
// holdLow is left. Frames are assumed no larger than the largest seen so far, so a
// client sending even frames stops within one frame below what its tenant has left.
func (b *Budget) Allow(ctx context.Context, billable int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.frame = max(b.frame, billable-b.prev)
	b.prev = billable
	if b.limit-billable >= holdLow && time.Since(b.last) < holdRenew {
		return nil
	}
	edge := billable+b.frame > b.limit // the next frame would pass the limit
	if edge || (b.refuse == nil && !b.short) || time.Since(b.last) >= holdRetry {
		b.askLocked(ctx, billable, holdAsk)
	}
	if b.refuse != nil && billable+b.frame > b.limit {
		return b.refuse
	}
	return nil
}

// Renew keeps the hold alive while the connection is quiet, asking for what is left of
// its grant (or more when little is).
func (b *Budget) Renew(ctx context.Context, billable int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Since(b.last) < holdRenew {
		return
	}
	b.askLocked(ctx, billable, max(b.limit-billable, holdLow))
}

func (b *Budget) askLocked(ctx context.Context, billable, want int64) {
	cctx, cancel := context.WithTimeout(ctx, holdCall)
	defer cancel()
	limit, _, err := b.h.Hold(cctx, b.info, string(b.info.Session), billable, want)
	switch {
	case err == nil:
		b.limit, b.last, b.refuse, b.failed = limit, time.Now(), nil, false
		b.short = limit < billable+want
	case refusal(err):
		b.limit, b.last, b.refuse, b.failed = limit, time.Now(), err, false
	default:
		// Fail open while the store is away: the ledger still bills every ms, and
		// the stream goes on as it would through a Redis restart.
		if !b.failed {
			b.log.Warn("quota hold unavailable; streaming on a local grant", "err", err)
		}
		b.failed, b.last = true, time.Now()
		b.limit = max(b.limit, billable+want)
	}
}

// Release ends the hold at the connection's final billable ms.
func (b *Budget) Release(billable int64) {
	ctx, cancel := context.WithTimeout(context.Background(), holdCall)
	defer cancel()
	if err := b.h.ReleaseHold(ctx, b.info, string(b.info.Session), billable); err != nil {
		b.log.Warn("release quota hold", "err", err)
	}
}

// quotaCode maps a refusal to the close message's error code.
func quotaCode(err error) wire.ErrorCode {
	_, code := quotaStatus(err)
	return code
}
