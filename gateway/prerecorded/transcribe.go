package prerecorded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/ingest/remote"
	"github.com/earshot-dev/earshot/internal/bus"
)

// job identifies one transcription.
type job struct {
	Request  bus.SessionID `json:"request_id"`
	Tenant   bus.TenantID  `json:"tenant"`
	Key      bus.KeyID     `json:"key,omitempty"`
	Model    string        `json:"model"`
	Language string        `json:"language,omitempty"`
	Redact   []string      `json:"redact,omitempty"`
	Keyterms []string      `json:"keyterms,omitempty"`
	// The response's shape: Deepgram's utterances (split at pauses of UttSplit seconds)
	// and paragraphs.
	Utterances bool    `json:"utterances,omitempty"`
	UttSplit   float64 `json:"utt_split,omitempty"`
	Paragraphs bool    `json:"paragraphs,omitempty"`
}

// settleAfter is how much audio with no final transcribe lets pass before it asks the
// worker to settle it (a Finalize), and half of how much it sends unsettled at most:
// under the gateway's 120 s replay limit.
const settleAfter = 45 * bus.SampleRate

// transcribe streams pcm through a worker at batch priority and collects its finals.
//
// Pacing: audio goes out at most Config.Speed × real time and never more than
// Config.Window ahead of the oldest speech the worker has not settled with a final
// (learnt from its speech_started events and finals), so the worker's bounded buffer
// never overflows however slow its decoding is. A backend that refuses audio as too
// fast (remote.ErrTooFast: the client's MaxSpeed) is retried after a pause, so the
// backend's own limit wins when it is lower.
//
// The audio is pulled from src half a second at a time, as the pacing allows, so a
// long file is never held whole in memory.
func (h *Handler) transcribe(ctx context.Context, j job, src *pcmSource, progress func(pct int)) ([]bus.Result, error) {
	st, err := h.cfg.Backend.Open(ctx, bus.SessionRequest{
		Session: j.Request, Tenant: j.Tenant, Key: j.Key, Model: j.Model, Channels: 1,
		Priority: bus.PriorityBatch,
		Options:  bus.StreamOptions{Language: j.Language, VADEvents: true, Redact: j.Redact, Keyterms: j.Keyterms},
	})
	if err != nil {
		if pe := gateway.BadRequestRefusal(err); pe != nil {
			return nil, pe
		}
		return nil, err
	}
	defer st.Close()
	var meter gateway.Meter
	if h.cfg.Metering != nil {
		if meter, err = h.cfg.Metering.Start(ctx, gateway.SessionInfo{Session: j.Request, Tenant: j.Tenant, Key: j.Key, Model: j.Model}); err != nil {
			return nil, fmt.Errorf("start metering: %w", err)
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := meter.Close(cctx); err != nil {
				h.log.Error("usage not flushed", "request", j.Request, "err", err)
			}
		}()
	}

	var (
		mu       sync.Mutex
		finals   []bus.Result
		settled  uint64   // end of the last final, samples
		cont     bool     // the last final was cut mid-speech: speech continues from settled
		starts   []uint64 // speech starts reported by the worker
		failed   error
		done     = make(chan struct{})
		wake     = make(chan struct{}, 1)
		closedOK bool
	)
	go func() {
		defer close(done)
		for r := range st.Results() {
			mu.Lock()
			switch r.Type {
			case bus.ResultFinal:
				if strings.TrimSpace(r.Text) != "" || len(r.Words) > 0 {
					finals = append(finals, r) // not the empty answers to settle's Finalize
				}
				end := r.EndSample
				if end == 0 {
					end = uint64((r.Start+r.Duration)*bus.SampleRate + 0.5)
				}
				settled, cont = max(settled, end), !r.SpeechFinal && !r.FromFinalize
			case bus.ResultSpeechStarted:
				starts = append(starts, uint64(r.Start*bus.SampleRate+0.5))
			case bus.ResultError:
				failed = fmt.Errorf("transcriber: %s: %s", r.Code, r.Message)
			case bus.ResultClosed:
				closedOK = true
			}
			mu.Unlock()
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()
	// anchor is the oldest unsettled speech position, or -1 when none is known.
	anchor := func() int64 {
		mu.Lock()
		defer mu.Unlock()
		a := int64(-1)
		if cont {
			a = int64(settled)
		}
		for _, s := range starts {
			if s >= settled && (a < 0 || int64(s) < a) {
				a = int64(s)
			}
		}
		return a
	}
	window := int64(h.cfg.Window.Seconds() * bus.SampleRate)
	began := time.Now()
	var meteredMs int64
	lastPct := -1
	var (
		pos          int64     // samples sent
		pending      []int16   // the next samples to send
		finalizeAt   int64     // pos of the last settling Finalize (answered once settled reaches it)
		finalizeSent time.Time // when it was sent (another may follow 10 s later, answered or not)
	)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		select {
		case <-done:
			mu.Lock()
			err := failed
			mu.Unlock()
			if err == nil {
				err = errors.New("transcriber closed the session early")
			}
			return nil, err
		default:
		}
		if pending == nil {
			var err error
			if pending, err = src.Next(); err == io.EOF {
				break
			} else if err != nil {
				return nil, err
			}
		}
		// Music, noise or silence gives no final, and the gateway keeps all audio since
		// the last final for replay (ingest ClientOptions.ReplayLimit, 120 s). With no
		// speech open, a Finalize settles it: the worker answers with an empty final.
		mu.Lock()
		unsettled := pos - int64(settled)
		mu.Unlock()
		a := anchor()
		if a < 0 && unsettled > settleAfter && (finalizeAt <= pos-unsettled || time.Since(finalizeSent) > 10*time.Second) {
			if err := st.Send(nil, 0, bus.FlagFinalize); err != nil {
				return nil, fmt.Errorf("settle audio: %w", err)
			}
			finalizeAt, finalizeSent = pos, time.Now()
		}
		allowed := int64(time.Since(began).Seconds()*h.cfg.Speed*bus.SampleRate) + 5*bus.SampleRate
		if pos > allowed || a >= 0 && pos-a > window || unsettled > 2*settleAfter {
			select {
			case <-wake:
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		if err := st.Send(pending, 0, 0); err != nil {
			if errors.Is(err, remote.ErrTooFast) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return nil, fmt.Errorf("send audio: %w", err)
		}
		pos += int64(len(pending))
		pending = nil
		if meter != nil {
			ms := pos / bus.SamplesPerMs
			meter.Add(ms - meteredMs)
			meteredMs = ms
		}
		if pct := int(min(pos*99/max(src.Samples, 1), 99)); progress != nil && pct != lastPct {
			lastPct = pct
			progress(pct)
		}
	}
	if err := st.Send(nil, 0, bus.FlagEnd); err != nil {
		return nil, fmt.Errorf("end audio: %w", err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	if failed != nil {
		return nil, failed
	}
	if !closedOK {
		return nil, errors.New("transcriber stream ended without closing")
	}
	if h.cfg.Redact != nil && len(j.Redact) > 0 {
		for i := range finals {
			t, w, err := h.cfg.Redact(finals[i].Text, finals[i].Words, j.Redact)
			if err != nil {
				return nil, err
			}
			finals[i].Text, finals[i].Words = t, w
		}
	}
	return finals, nil
}
