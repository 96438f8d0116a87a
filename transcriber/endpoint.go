package transcriber

import (
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
)

// vadEvent is what the endpointer saw in one VAD window.
type vadEvent uint8

const (
	evNone        vadEvent = iota
	evSpeechStart          // speech began (at endpointer.speechStart)
	evSpeechEnd            // hangover of silence after speech (speech ended at endpointer.speechEnd)
)

// DefaultEndpointSilence is the silence after speech that ends an utterance unless a
// pool or session sets another (PoolConfig.EndpointSilence, endpointing=).
const DefaultEndpointSilence = 600 * time.Millisecond

// DefaultMinEndpoint is the shortest endpointing a client may ask for unless a pool
// sets another (PoolConfig.MinEndpoint): a shorter request is raised to it.
const DefaultMinEndpoint = 500 * time.Millisecond

// EndpointFor is the endpointing silence a stream asking for endpointing= ms gets from
// a pool with the default settings (0: the default; below the minimum: the minimum).
func EndpointFor(ms int) time.Duration {
	return endpointSilence(ms, DefaultEndpointSilence, DefaultMinEndpoint)
}

// endpointSilence is the silence that ends a stream's utterances when it asks for
// endpointing= ms (> 0; 0: def), raised to floor.
func endpointSilence(ms int, def, floor time.Duration) time.Duration {
	if ms <= 0 {
		return def
	}
	return max(time.Duration(ms)*time.Millisecond, floor)
}

// Endpointer hysteresis defaults (Silero's own: start at 0.5, end at 0.5 − 0.15).
const (
	vadStartThold = 0.5
	vadEndThold   = 0.35
	minSpeechMs   = 250
)

// endpointer turns per-window speech probabilities into speech start/end events with
// hysteresis: a candidate starts at a window with p ≥ startTh, stays alive while
// p ≥ endTh, and becomes speech after minSpeech samples; speech ends after hangover
// samples of consecutive windows with p < endTh. Positions are stream samples. Not safe
// for concurrent use.
type endpointer struct {
	win       uint64 // samples per VAD window
	startTh   float32
	endTh     float32
	minSpeech uint64 // samples
	hangover  uint64 // samples of silence that end speech

	pos         uint64 // stream position of the next window
	inSpeech    bool
	cand        bool
	candStart   uint64
	speechStart uint64 // start of the current/last speech
	speechEnd   uint64 // end of the last window with p ≥ endTh while in speech
	silence     uint64 // samples of silence since speechEnd
}

func newEndpointer(win int, start uint64, hangover uint64) endpointer {
	return endpointer{
		win:       uint64(win),
		startTh:   vadStartThold,
		endTh:     vadEndThold,
		minSpeech: minSpeechMs * bus.SamplesPerMs,
		hangover:  hangover,
		pos:       start,
	}
}

// push consumes the probability of the window at e.pos.
func (e *endpointer) push(p float32) vadEvent {
	at := e.pos
	e.pos += e.win
	switch {
	case e.inSpeech:
		if p >= e.endTh {
			e.speechEnd, e.silence = e.pos, 0
			return evNone
		}
		e.silence += e.win
		if e.silence >= e.hangover {
			e.inSpeech = false
			return evSpeechEnd
		}
	case e.cand:
		if p < e.endTh {
			e.cand = false
			return evNone
		}
		if e.pos-e.candStart >= e.minSpeech {
			e.cand, e.inSpeech = false, true
			e.speechStart, e.speechEnd, e.silence = e.candStart, e.pos, 0
			return evSpeechStart
		}
	case p >= e.startTh:
		e.cand, e.candStart = true, at
		if e.win >= e.minSpeech {
			e.cand, e.inSpeech = false, true
			e.speechStart, e.speechEnd, e.silence = at, e.pos, 0
			return evSpeechStart
		}
	}
	return evNone
}

// SpeechRuns is where a stream's endpointer hears speech in a whole recording:
// [start, end) in samples, with its thresholds and minimum speech, a pause of hangover
// (the endpointing silence) ending a run. With the stream's hangover a run's end is
// the speech end of the utterance the stream cuts there. v is reset first. Benchmarks
// measure final latency from these ends (internal/bench, Clip.Speech).
func SpeechRuns(v VAD, pcm []float32, hangover time.Duration) ([][2]int, error) {
	v.Reset()
	probs, err := v.Process(pcm)
	if err != nil {
		return nil, err
	}
	win := v.WindowSamples()
	ep := newEndpointer(win, 0, max(uint64(win), uint64(hangover.Milliseconds())*bus.SamplesPerMs))
	var runs [][2]int
	for _, p := range probs {
		if ep.push(p) == evSpeechEnd {
			runs = append(runs, [2]int{int(ep.speechStart), int(ep.speechEnd)})
		}
	}
	if ep.inSpeech { // speech up to the end of the recording
		runs = append(runs, [2]int{int(ep.speechStart), int(ep.speechEnd)})
	}
	return runs, nil
}
