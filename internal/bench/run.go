package bench

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Config of a sweep. Zero values take the defaults noted.
type Config struct {
	Clips    []Clip        // required
	Streams  []int         // concurrent streams per level, ascending; default 1,2,4,8
	Duration time.Duration // audio per stream per level (rounded up to whole clips); default 60 s
	ChunkMs  int           // audio per frame; default 100
	KneeP95  time.Duration // stop after a level whose partial p95 is above this; default 1.5 s
	// KneeFinalP95 stops the sweep after a level whose final p95 is above it: finals
	// that fall behind mean the streams no longer keep real time, which partials, sent
	// only when a decode slot is free, do not show. Default 1 s (issue 23's target).
	// It is also how far one stream may fall behind real time (Level.LagMaxSec): the p95
	// pools every stream's finals, so one stream left behind does not move it.
	KneeFinalP95 time.Duration
	// Language is the streams' language= (set before UseWebSocket or UseBus); scoring is
	// by character error rate for Chinese, Japanese and Korean (wer.ErrorRate).
	Language string
	// EndpointingMs is the streams' endpointing= (set before UseWebSocket or UseBus):
	// 0 for the server's default. The clips' speech (Clip.Speech) must be measured with
	// the same endpointing.
	EndpointingMs int
	Pids          []int // service processes to measure (CPU, RSS)
	GPU           bool  // sample nvidia-smi during each level
	Log           *slog.Logger

	// dial opens one stream; set by RunWebSocket or RunBus.
	dial dialer
	// usage returns the tenant's billed ms; nil or ok=false: unavailable.
	usage func(context.Context) (int64, bool)
	// Target names what was measured, for the report ("ws://…", "bus nats://…").
	Target string
}

func (c *Config) defaults() error {
	if len(c.Clips) == 0 {
		return fmt.Errorf("%w: no clips", ErrConfig)
	}
	if len(c.Streams) == 0 {
		c.Streams = []int{1, 2, 4, 8}
	}
	if !slices.IsSorted(c.Streams) || c.Streams[0] < 1 {
		return fmt.Errorf("%w: --streams must be ascending and ≥ 1: %v", ErrConfig, c.Streams)
	}
	if c.Duration <= 0 {
		c.Duration = 60 * time.Second
	}
	if c.ChunkMs <= 0 {
		c.ChunkMs = 100
	}
	if c.KneeP95 <= 0 {
		c.KneeP95 = kneePartialRule
	}
	if c.KneeFinalP95 <= 0 {
		c.KneeFinalP95 = kneeFinalRule
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Level is one step of the sweep: N streams at once.
type Level struct {
	Streams     int      `json:"streams"`
	Errors      int      `json:"errors"`
	ErrorSample []string `json:"error_sample,omitempty"`
	PartialMs   Dist     `json:"partial_latency_ms"`
	WordMs      Dist     `json:"word_latency_ms"`
	FinalMs     Dist     `json:"final_latency_ms"`        // from the speech end (Report.FinalFrom)
	FinalEndMs  Dist     `json:"final_after_endpoint_ms"` // from the final's own end, the endpoint
	FirstMs     Dist     `json:"first_text_latency_ms"`   // an utterance's first text after its start was sent
	WER         float64  `json:"wer"`                     // pooled over streams: errors / reference words (characters: CER)
	WERHumanRef *float64 `json:"wer_human_ref,omitempty"` // WER over the clips whose reference a person wrote (Report.HumanRefClips); null: not told apart
	AudioSec    float64  `json:"audio_sec"`
	AcceptedSec float64  `json:"accepted_sec"`
	BilledSec   *float64 `json:"billed_sec"` // null: billing unavailable
	BilledNote  string   `json:"billed_note,omitempty"`
	WallSec     float64  `json:"wall_sec"`
	RTF         float64  `json:"rtf"`         // mean over streams of wall / audio (≥ 1 for live audio)
	LagMaxSec   float64  `json:"lag_max_sec"` // the worst stream's StreamResult.LagSec: how far it fell behind real time
	// Languages counts every stream's finals by detected_language (language=multi).
	Languages   map[string]int `json:"detected_languages,omitempty"`
	CPUPerAudio float64        `json:"cpu_sec_per_audio_sec"` // service CPU seconds per audio second
	Procs       []ProcStat     `json:"procs,omitempty"`       // each measured process
	GPU         *GPUStat       `json:"gpu,omitempty"`         // nvidia-smi, when asked for and present
	PerStream   []StreamResult `json:"per_stream"`
	OverKnee    string         `json:"over_knee,omitempty"` // why the sweep stopped here
}

// Report is a whole sweep.
type Report struct {
	Target      string    `json:"target"`
	Started     time.Time `json:"started"`
	Clips       int       `json:"clips"`
	Duration    float64   `json:"duration_sec"`
	KneeP95Ms   float64   `json:"knee_p95_ms"`
	KneeFinalMs float64   `json:"knee_final_p95_ms"`
	Language    string    `json:"language,omitempty"`
	// EndpointingMs is the streams' endpointing= (0: the server's default).
	EndpointingMs int `json:"endpointing_ms,omitempty"`
	// FinalFrom is where final latency starts: "speech end" (every clip's speech was
	// measured: Clip.Speech) or "endpoint" (the final's own end).
	FinalFrom string `json:"final_from"`
	Knee      int    `json:"knee_streams"` // most streams that stayed under the knee; 0: none
	// IdleRSSMB is the RSS of the service processes before the first level (their pids
	// that could be read); a level's RSS per stream is (its peak − this) / streams.
	IdleRSSMB float64 `json:"idle_rss_mb"`
	Levels    []Level `json:"levels"`

	// HumanRefClips is how many of the clips have a reference a person wrote, when a
	// provenance.tsv beside the manifest marked the others as another model's output
	// (Clip.ModelReference); 0 when the clips are not told apart.
	HumanRefClips int `json:"human_ref_clips,omitempty"`
}

// Report.FinalFrom values.
const (
	FinalFromSpeechEnd = "speech end"
	FinalFromEndpoint  = "endpoint"
)

func speechKnown(clips []Clip) bool {
	for _, c := range clips {
		if c.Speech == nil {
			return false
		}
	}
	return len(clips) > 0
}

// Run sweeps the levels of cfg, stopping after the first level over the knee.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.dial == nil {
		return nil, fmt.Errorf("%w: no transport (use RunWebSocket or RunBus)", ErrConfig)
	}
	rep := &Report{Target: cfg.Target, Started: time.Now().UTC(), Clips: len(cfg.Clips),
		Duration: cfg.Duration.Seconds(), KneeP95Ms: float64(cfg.KneeP95.Milliseconds()),
		KneeFinalMs: float64(cfg.KneeFinalP95.Milliseconds()), Language: cfg.Language, FinalFrom: FinalFromEndpoint,
		EndpointingMs: cfg.EndpointingMs, HumanRefClips: humanRefClips(cfg.Clips)}
	if speechKnown(cfg.Clips) {
		rep.FinalFrom = FinalFromSpeechEnd
	}
	for _, p := range cfg.Pids {
		if kb, err := rssKB(p); err == nil {
			rep.IdleRSSMB += float64(kb) / 1024
		}
	}
	prog := newProgram(cfg.Clips, cfg.Duration)
	for _, n := range cfg.Streams {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		cfg.Log.Info("level", "streams", n, "duration", cfg.Duration)
		lv := runLevel(ctx, cfg, prog, n)
		rep.Levels = append(rep.Levels, lv)
		attrs := []any{"streams", n, "partial_p95_ms", lv.PartialMs.P95, "final_p95_ms", lv.FinalMs.P95, "wer", lv.WER}
		if lv.WERHumanRef != nil { // the rate, not the pointer
			attrs = append(attrs, "wer_human_ref", *lv.WERHumanRef)
		}
		cfg.Log.Info("level done", append(attrs, "errors", lv.Errors)...)
		if lv.OverKnee != "" {
			break
		}
		rep.Knee = n
	}
	return rep, nil
}

func runLevel(ctx context.Context, cfg Config, prog *program, n int) Level {
	lv := Level{Streams: n}
	var before int64
	usageOK := cfg.usage != nil
	if usageOK {
		before, usageOK = cfg.usage(ctx)
	}
	ps := startProcSampler(cfg.Pids, 500*time.Millisecond)
	var gs *gpuSampler
	if cfg.GPU {
		gs = startGPUSampler(time.Second)
	}
	t0 := time.Now()
	results := make([]StreamResult, n)
	var wg sync.WaitGroup
	// Stagger the starts over up to 2 s so the streams do not decode in lockstep.
	stagger := min(2*time.Second/time.Duration(n), 200*time.Millisecond)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-time.After(time.Duration(i) * stagger):
			case <-ctx.Done():
			}
			pcm, ref, speech := prog.plan(i, n, cfg.Duration)
			results[i] = runStream(ctx, cfg.dial, i, pcm, ref, speech, prog.humanRefs(i, n, cfg.Duration), cfg.Language, cfg.ChunkMs)
		}()
	}
	wg.Wait()
	lv.WallSec = time.Since(t0).Seconds()
	lv.Procs = ps.finish()
	if gs != nil {
		lv.GPU = gs.finish()
	}
	var pm, wm, fm, fem, ftm []float64
	var errs, refs, herrs, hrefs int
	var rtf float64
	for _, r := range results {
		pm, wm, fm, ftm = append(pm, r.PartialMs...), append(wm, r.WordMs...), append(fm, r.FinalMs...), append(ftm, r.FirstMs...)
		fem = append(fem, r.FinalEndMs...)
		errs, refs = errs+r.WordErrors, refs+r.RefWords
		herrs, hrefs = herrs+r.HumanRefErrors, hrefs+r.HumanRefWords
		lv.AudioSec += r.AudioSec
		lv.AcceptedSec += r.AcceptedSec
		lv.Errors += r.Errors
		if r.Error != "" && len(lv.ErrorSample) < 5 {
			lv.ErrorSample = append(lv.ErrorSample, fmt.Sprintf("stream %d: %s", r.Index, r.Error))
		}
		if r.AudioSec > 0 {
			rtf += r.WallSec / r.AudioSec
		}
		lv.LagMaxSec = max(lv.LagMaxSec, r.LagSec)
		for l, k := range r.Languages {
			if lv.Languages == nil {
				lv.Languages = map[string]int{}
			}
			lv.Languages[l] += k
		}
	}
	lv.PerStream = results
	lv.PartialMs, lv.WordMs, lv.FinalMs, lv.FirstMs = distOf(pm), distOf(wm), distOf(fm), distOf(ftm)
	lv.FinalEndMs = distOf(fem)
	lv.RTF = rtf / float64(n)
	if refs > 0 {
		lv.WER = float64(errs) / float64(refs)
	}
	if prog.mixed && hrefs > 0 {
		w := float64(herrs) / float64(hrefs)
		lv.WERHumanRef = &w
	}
	var cpu float64
	for _, p := range lv.Procs {
		cpu += p.CPUSec
	}
	if lv.AudioSec > 0 {
		lv.CPUPerAudio = cpu / lv.AudioSec
	}
	lv.BilledSec, lv.BilledNote = billed(ctx, cfg, usageOK, before, lv.AcceptedSec)
	lv.OverKnee = lv.overKnee(cfg.KneeP95, cfg.KneeFinalP95)
	return lv
}

// overKnee says why l is past the knee (errors, no partials, partial p95 above
// partial, final p95 above final, a stream that fell behind real time by more than
// final), or "" when it is not.
//
// Behind real time (StreamResult.LagSec, the worst stream's in LagMaxSec): the time
// from asking for the end of the stream, right after its last frame, to its close. A
// stream that keeps up has every result in by then (each clip is followed by 1 s of
// silence, so its last final comes during the last gap) and closes at once: ≈ 0 s. One
// whose decodes fell behind still owes results and closes that much later; more than
// final means its last utterance's final came more than final after the speech end,
// whatever the p95 pooled over all streams says. (The WhisperLive adapter asks for the
// end only once the server's output has settled, so there it counts what is left then.)
func (l Level) overKnee(partial, final time.Duration) string {
	switch {
	case l.Errors > 0:
		return fmt.Sprintf("%d errors", l.Errors)
	case l.PartialMs.N == 0:
		return "no partials"
	case l.PartialMs.P95 > float64(partial.Milliseconds()):
		return fmt.Sprintf("partial p95 %.0f ms > %v", l.PartialMs.P95, partial)
	case l.FinalMs.P95 > float64(final.Milliseconds()):
		return fmt.Sprintf("final p95 %.0f ms > %v", l.FinalMs.P95, final)
	case l.LagMaxSec > final.Seconds():
		return fmt.Sprintf("a stream fell behind real time: results %.1f s after its audio ended > %v", l.LagMaxSec, final)
	}
	return ""
}

// billed waits (up to 15 s: billing applies usage asynchronously from JetStream) for
// the tenant's usage to grow by the accepted audio and returns the growth.
func billed(ctx context.Context, cfg Config, ok bool, before int64, acceptedSec float64) (*float64, string) {
	if !ok {
		return nil, "unavailable: no GET /v1/usage for these credentials"
	}
	want := int64(acceptedSec*1000 + 0.5)
	deadline := time.Now().Add(15 * time.Second)
	var got int64
	for {
		after, ok := cfg.usage(ctx)
		if !ok {
			return nil, "unavailable: GET /v1/usage failed after the level"
		}
		got = after - before
		if got >= want || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	s := float64(got) / 1000
	note := ""
	if got != want {
		note = fmt.Sprintf("billed %d ms ≠ accepted %d ms (other streams of this tenant count too)", got, want)
	}
	return &s, note
}
