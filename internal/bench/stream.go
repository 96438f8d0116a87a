package bench

import (
	"context"
	"errors"
	"math"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/earshot-dev/earshot/internal/wer"
)

// gapSeconds of silence follow every clip, so the server's endpointing ends the
// utterance there and finals line up with clips.
const gapSeconds = 1.0

// maxLanguages bounds StreamResult.Languages: a server could name a new language in
// every final.
const maxLanguages = 16

// program is the audio every stream draws from: the clips back to back, each followed
// by a gap, looped until they cover the level's duration.
// Read-only once built, shared by all streams.
type program struct {
	pcm    []byte
	segs   []segment
	speech bool // every clip's speech was measured (speechKnown)
	mixed  bool // some clips' references are model output, some a person's (humanRefClips)
}

type segment struct {
	from, to int // byte offsets in pcm (clip and its gap)
	ref      string
	speech   []Span // the clip's speech, from the clip's start; nil: not measured
	modelRef bool   // Clip.ModelReference
}

// refSpan is a clip whose reference a person wrote, with its gap, on a stream's clock
// (seconds).
type refSpan struct {
	from, to float64
	ref      string
}

// humanRefClips is how many of clips have a reference a person wrote, or 0 when that
// does not tell them apart (all or none: no provenance, or nothing flagged).
func humanRefClips(clips []Clip) int {
	n := 0
	for _, c := range clips {
		if !c.ModelReference {
			n++
		}
	}
	if n == len(clips) {
		return 0
	}
	return n
}

func newProgram(clips []Clip, d time.Duration) *program {
	p := &program{speech: speechKnown(clips), mixed: humanRefClips(clips) > 0}
	gap := silence(gapSeconds)
	need := 32000 * (d.Seconds() + 1)
	for i := 0; float64(len(p.pcm)) < need; i++ {
		c := clips[i%len(clips)]
		from := len(p.pcm)
		p.pcm = append(p.pcm, c.PCM...)
		p.pcm = append(p.pcm, gap...)
		p.segs = append(p.segs, segment{from: from, to: len(p.pcm), ref: c.Reference, speech: c.Speech, modelRef: c.ModelReference})
	}
	return p
}

// plan is what stream i of a level of n streams sends: the whole clips from the first
// one on until they last at least d (the level's audio), rotated so that stream i starts
// at clip i·k/n of those k. Every stream of every level thus sends the same clips, so
// levels score the same audio and a level's WER compares with one stream's; and the
// streams start on different clips, so they do not decode in lockstep. speech is where
// the stream's audio holds speech on its clock (nil when a clip's was not measured).
func (p *program) plan(i, n int, d time.Duration) (pcm []byte, ref string, speech []Span) {
	order := p.order(i, n, d)
	pcm = make([]byte, 0, p.segs[len(order)-1].to)
	refs := make([]string, 0, len(order))
	for _, sg := range order {
		if p.speech {
			at := float64(len(pcm)) / 32000
			for _, sp := range sg.speech {
				speech = append(speech, Span{From: at + sp.From, To: at + sp.To})
			}
		}
		pcm = append(pcm, p.pcm[sg.from:sg.to]...)
		refs = append(refs, sg.ref)
	}
	return pcm, strings.Join(refs, " "), speech
}

// order is the segments stream i of n sends, in order (see plan).
func (p *program) order(i, n int, d time.Duration) []segment {
	k := len(p.segs)
	for j := range p.segs {
		if float64(p.segs[j].to) >= d.Seconds()*32000 {
			k = j + 1
			break
		}
	}
	start := i * k / max(n, 1) % k
	out := make([]segment, k)
	for j := range k {
		out[j] = p.segs[(start+j)%k]
	}
	return out
}

// humanRefs is where plan(i, n, d)'s clips whose reference a person wrote lie on the
// stream's clock; nil when the program's clips are not told apart (humanRefClips).
func (p *program) humanRefs(i, n int, d time.Duration) []refSpan {
	if !p.mixed {
		return nil
	}
	spans := []refSpan{}
	at := 0
	for _, sg := range p.order(i, n, d) {
		if !sg.modelRef {
			spans = append(spans, refSpan{from: float64(at) / 32000, to: float64(at+sg.to-sg.from) / 32000, ref: sg.ref})
		}
		at += sg.to - sg.from
	}
	return spans
}

// timedText is a final's text and where it lies on the stream clock.
type timedText struct {
	start, dur float64
	text       string
}

// scoreSpans scores the finals that fall in each span (by their midpoint: a clip's
// final ends in the gap after it) against the span's reference, pooled.
func scoreSpans(language string, spans []refSpan, finals []timedText) (errs, refs int) {
	for _, sp := range spans {
		var texts []string
		for _, f := range finals {
			if mid := f.start + f.dur/2; mid >= sp.from && mid < sp.to {
				texts = append(texts, f.text)
			}
		}
		c := wer.ErrorRate(language, sp.ref, strings.Join(texts, " "))
		errs, refs = errs+c.Errors(), refs+c.Ref
	}
	return errs, refs
}

// speechEnd is the end of the speech a result covering the stream up to end holds:
// the end of the last speech span that starts before end, or end itself when that
// span runs past it (a final cut in the middle of speech) or when nothing was heard.
func speechEnd(speech []Span, end float64) float64 {
	i := sort.Search(len(speech), func(i int) bool { return speech[i].From >= end })
	if i == 0 {
		return end
	}
	return min(speech[i-1].To, end)
}

// StreamResult is what one stream measured. Latencies are in milliseconds.
type StreamResult struct {
	Index       int     `json:"index"`
	AudioSec    float64 `json:"audio_sec"`    // sent
	AcceptedSec float64 `json:"accepted_sec"` // the gateway's Metadata duration
	WallSec     float64 `json:"wall_sec"`     // first audio sent → stream closed
	LagSec      float64 `json:"lag_sec"`      // behind real time: the end asked for (after the last frame) → closed; Level.overKnee
	Partials    int     `json:"partials"`
	Finals      int     `json:"finals"`
	// Languages counts the finals by their detected_language (language=multi).
	Languages  map[string]int `json:"detected_languages,omitempty"`
	WER        float64        `json:"wer"`
	WordErrors int            `json:"word_errors"`
	RefWords   int            `json:"ref_words"`
	Error      string         `json:"error,omitempty"`
	Errors     int            `json:"errors"`
	Partial    Dist           `json:"partial_latency_ms"`
	Word       Dist           `json:"word_latency_ms"`
	Final      Dist           `json:"final_latency_ms"`        // from the speech end (from the endpoint when speech is unknown)
	FinalEnd   Dist           `json:"final_after_endpoint_ms"` // from the final's own end
	First      Dist           `json:"first_text_latency_ms"`
	PartialMs  []float64      `json:"-"`
	FirstMs    []float64      `json:"-"`
	WordMs     []float64      `json:"-"`
	FinalMs    []float64      `json:"-"`
	FinalEndMs []float64      `json:"-"`
	Transcript string         `json:"transcript"` // its finals, joined
	Reference  string         `json:"reference"`  // the references of the clips it sent

	// Over the clips whose reference a person wrote (Report.HumanRefClips; 0 when the
	// clips are not told apart): errors and reference words (characters) of the finals
	// whose midpoint falls in such a clip or its gap.
	HumanRefErrors int `json:"human_ref_errors,omitempty"`
	HumanRefWords  int `json:"human_ref_words,omitempty"`
}

// sendClock remembers when each chunk went out, to map a stream time to the wall time
// at which that much audio had been sent.
type sendClock struct {
	mu      sync.Mutex
	chunkMs int
	at      []time.Time // at[k]: chunk k (audio up to (k+1)·chunkMs) handed to the connection
}

func (c *sendClock) mark(t time.Time) { c.mu.Lock(); c.at = append(c.at, t); c.mu.Unlock() }

// sentAt is when audio up to stream time sec had been sent; ok=false when it has not
// been sent yet (a result cannot cover audio the server never got; it then reads as
// the latest chunk's time).
func (c *sendClock) sentAt(sec float64) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.at) == 0 {
		return time.Time{}, false
	}
	k := int(math.Ceil(sec*1000/float64(c.chunkMs)-1e-6)) - 1
	k = max(k, 0)
	if k >= len(c.at) {
		return c.at[len(c.at)-1], false
	}
	return c.at[k], true
}

// runStream streams pcm in real time on one connection and measures it.
// A final's latency is from the end of the speech it holds (speech, on the stream
// clock; nil: from the final's end). human, when not nil, are the clips whose
// reference a person wrote, scored apart as well.
func runStream(ctx context.Context, dial dialer, idx int, pcm []byte, ref string, speech []Span, human []refSpan, language string, chunkMs int) StreamResult {
	res := StreamResult{Index: idx, Reference: ref}
	c, err := dial(ctx)
	if err != nil {
		res.Error, res.Errors = "dial: "+err.Error(), 1
		return res
	}
	clock := &sendClock{chunkMs: chunkMs}
	chunk := 32 * chunkMs
	start := time.Now()
	var asked time.Time // the end of the stream asked for; read after sendErr
	sendErr := make(chan error, 1)
	go func() {
		for k := 0; k*chunk < len(pcm); k++ {
			due := start.Add(time.Duration(k*chunkMs) * time.Millisecond)
			select {
			case <-time.After(time.Until(due)):
			case <-ctx.Done():
				c.abort()
				sendErr <- ctx.Err()
				return
			}
			// Marked before the write: a fast server can answer before send returns,
			// and its result must still find the chunk's time.
			clock.mark(time.Now())
			if err := c.send(pcm[k*chunk : min((k+1)*chunk, len(pcm))]); err != nil {
				sendErr <- err
				return
			}
		}
		err := c.closeStream()
		asked = time.Now()
		sendErr <- err
	}()
	res.AudioSec = float64(len(pcm)) / 32000
	var timed []timedText // finals with their times, for human
	var finals []string
	seen := 0          // words of the open utterance already seen in a partial
	firstSeen := false // the open utterance has shown text
	// broken reports text a client cannot show: a replacement character (what a JSON
	// decoder makes of invalid UTF-8, e.g. half of a Chinese character).
	broken := func(text string) {
		if strings.ContainsRune(text, utf8.RuneError) {
			res.Errors++
			if res.Error == "" {
				res.Error = "broken UTF-8 in a result: " + text
			}
		}
	}
	// lat is the latency of a result arriving at now that covers audio up to sec.
	lat := func(now time.Time, sec float64) (float64, bool) {
		t, _ := clock.sentAt(sec)
		if t.IsZero() {
			return 0, false
		}
		return float64(now.Sub(t).Microseconds()) / 1000, true
	}
	watchdog := time.AfterFunc(time.Duration(res.AudioSec*float64(time.Second))+60*time.Second, c.abort)
	defer watchdog.Stop()
	for ev := range c.events() {
		now := time.Now()
		switch ev.kind {
		case evPartial:
			if ev.text == "" {
				continue
			}
			broken(ev.text)
			if !firstSeen {
				firstSeen = true
				if l, ok := lat(now, ev.start); ok {
					res.FirstMs = append(res.FirstMs, l)
				}
			}
			res.Partials++
			if l, ok := lat(now, ev.start+ev.dur); ok {
				res.PartialMs = append(res.PartialMs, l)
			}
			for j := seen; j < len(ev.words); j++ {
				if l, ok := lat(now, ev.words[j].end); ok {
					res.WordMs = append(res.WordMs, l)
				}
			}
			seen = max(seen, len(ev.words))
		case evFinal:
			seen = 0
			first := !firstSeen
			firstSeen = false
			if ev.text == "" {
				continue
			}
			broken(ev.text)
			if l, ok := lat(now, ev.start); ok && first {
				res.FirstMs = append(res.FirstMs, l)
			}
			res.Finals++
			if ev.lang != "" && len(res.Languages) < maxLanguages {
				if res.Languages == nil {
					res.Languages = map[string]int{}
				}
				res.Languages[ev.lang]++
			}
			finals = append(finals, ev.text)
			timed = append(timed, timedText{start: ev.start, dur: ev.dur, text: ev.text})
			if l, ok := lat(now, ev.start+ev.dur); ok {
				res.FinalEndMs = append(res.FinalEndMs, l)
			}
			if l, ok := lat(now, speechEnd(speech, ev.start+ev.dur)); ok {
				res.FinalMs = append(res.FinalMs, l)
			}
		case evMetadata:
			res.AcceptedSec = ev.acceptedSec
		case evError:
			res.Errors++
			if res.Error == "" {
				res.Error = ev.err
			}
		}
	}
	end := time.Now()
	res.WallSec = end.Sub(start).Seconds()
	if err := <-sendErr; err != nil && res.Error == "" {
		res.Error, res.Errors = "send: "+err.Error(), res.Errors+1
	}
	if !asked.IsZero() {
		res.LagSec = max(0, end.Sub(asked).Seconds())
	}
	if err := c.err(); err != nil && !errors.Is(err, context.Canceled) {
		res.Errors++
		if res.Error == "" {
			res.Error = err.Error()
		}
	}
	res.Partial, res.Word, res.Final, res.First = distOf(res.PartialMs), distOf(res.WordMs), distOf(res.FinalMs), distOf(res.FirstMs)
	res.FinalEnd = distOf(res.FinalEndMs)
	res.Transcript = strings.Join(finals, " ")
	cnt := wer.ErrorRate(language, ref, res.Transcript)
	res.WER, res.WordErrors, res.RefWords = cnt.Rate(), cnt.Errors(), cnt.Ref
	if human != nil {
		res.HumanRefErrors, res.HumanRefWords = scoreSpans(language, human, timed)
	}
	return res
}
