package transcriber

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/cpu"

	"github.com/earshot-dev/earshot/internal/hanzi"
	"github.com/earshot-dev/earshot/internal/lang"
	"github.com/earshot-dev/earshot/transcriber/whispercpp"
)

// ErrModelFile means a whisper or VAD model file is missing or not a usable
// ggml model. The message tells the user how to get one.
var ErrModelFile = errors.New("transcriber: model file missing or unusable")

const modelHint = "run `earshot models pull tiny.en` or `make model`"

// LoadOptions configure LoadWhisper. The zero value is CPU, whisper's
// flash attention, min(4, NumCPU) threads and a discarded log.
type LoadOptions struct {
	Name        string // Model.Name; default: the file name without "ggml-" and ".bin"
	Threads     int    // default decode threads when DecodeRequest.Threads is 0
	UseGPU      bool   // use_gpu (needs a GPU build of whisper.cpp)
	GPUDevice   int
	NoFlashAttn bool // turn whisper's flash attention off
	// EstimateWordTimes loads the model without its alignment heads: words are then
	// placed by spreading the utterance over its characters. By default the heads are
	// loaded and decodes that ask for DecodeRequest.WordTimes get DTW token times. DTW
	// needs the decoder without flash attention; the encoder keeps it (patch 0008: with
	// ggml's llamafile matrix products flash attention takes 8–20 % off the encoder,
	// BENCHMARKS.md, Density). A model of unknown shape falls back to estimates with a
	// warning.
	EstimateWordTimes bool
	Log               *slog.Logger
}

// Segment is one whisper segment of an offline decode; times are seconds from
// the start of the input.
type Segment struct {
	Start, End   float64
	Text         string
	Tokens       []Token // text tokens only
	NoSpeechProb float32
	AvgLogprob   float64
}

type whisperModel struct {
	name    string
	path    string
	threads int
	m       *whispercpp.Model
	log     *slog.Logger

	classesMu sync.Mutex
	classes   map[lang.Script]*whispercpp.TokenClasses // draftClasses, made on first use
}

// draftClassesOn switches whisper patch 0014 on for Chinese decodes (DecodeRequest.Script);
// EARSHOT_DRAFT_CLASSES=0 switches it off, for comparisons (BENCHMARKS.md, "Drafts across
// scripts").
var draftClassesOn = envSwitch("EARSHOT_DRAFT_CLASSES", true)

// envSwitch reads a 0/1 switch from the environment: def when unset, and with a warning on
// stderr when it is neither.
func envSwitch(name string, def bool) bool {
	v, ok := os.LookupEnv(name)
	switch {
	case !ok:
		return def
	case v == "0" || v == "1":
		return v == "1"
	}
	on := map[bool]string{true: "on", false: "off"}[def]
	fmt.Fprintf(os.Stderr, "earshot: %s=%q is neither 0 nor 1: leaving it %s; unset it or give 0 or 1\n", name, v, on)
	return def
}

// draftClasses are the model's text tokens classed by their text in script (patch 0014,
// DecodeRequest.Script); nil for no script, or when they cannot be made (logged; the
// decode goes on without them).
func (wm *whisperModel) draftClasses(script lang.Script) *whispercpp.TokenClasses {
	var key func(string) string
	switch script {
	case lang.Simplified:
		key = hanzi.ToSimplified
	case lang.Traditional:
		key = hanzi.ToTraditional
	default:
		return nil
	}
	wm.classesMu.Lock()
	defer wm.classesMu.Unlock()
	if c, ok := wm.classes[script]; ok {
		return c
	}
	start := time.Now()
	c, err := wm.m.TokenClasses(key)
	if err != nil {
		wm.log.Warn("draft token classes", "script", script, "err", err)
		return nil
	}
	if wm.classes == nil {
		wm.classes = map[lang.Script]*whispercpp.TokenClasses{}
	}
	wm.classes[script] = c
	wm.log.Debug("draft token classes", "script", script, "shared", c.Shared(), "took_ms", time.Since(start).Milliseconds())
	return c
}

// LoadWhisper loads ggml whisper weights once (one weights-only context);
// every Decoder made from the Model owns its own whisper_state. It logs the
// load time and the process RSS growth. Share the Model rather than load a file
// twice: every Decoder of it shares the weights.
func LoadWhisper(path string, opts LoadOptions) (Model, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := opts.Name
	if name == "" {
		name = strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "ggml-"), ".bin")
	}
	threads := opts.Threads
	if threads <= 0 {
		threads = min(4, runtime.NumCPU())
	}
	log = log.With("component", "whisper", "model", name)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: %s: %w (%s)", ErrModelFile, path, err, modelHint)
	}
	rss0 := rssBytes()
	start := time.Now()
	cp := whispercpp.ContextParams{UseGPU: opts.UseGPU, FlashAttn: !opts.NoFlashAttn, GPUDevice: opts.GPUDevice}
	if !opts.EstimateWordTimes {
		switch preset, err := whispercpp.DTWPreset(path); {
		case err != nil:
			return nil, fmt.Errorf("%w: %w (%s)", ErrModelFile, err, modelHint)
		case preset == "":
			log.Warn("no alignment heads known for this model: word times are estimated", "path", path)
		default:
			cp.DTW = preset
		}
	}
	m, err := whispercpp.Load(path, cp)
	if err != nil {
		return nil, fmt.Errorf("%w: %w (%s)", ErrModelFile, err, modelHint)
	}
	info := m.Info()
	fileSize := int64(0)
	if st, err := os.Stat(path); err == nil {
		fileSize = st.Size()
	}
	log.Info("whisper model loaded", "path", path, "type", info.Type,
		"multilingual", info.Multilingual, "load_ms", time.Since(start).Milliseconds(),
		"file_mb", fileSize>>20, "rss_delta_mb", (rssBytes()-rss0)>>20, "threads", threads,
		"gpu", opts.UseGPU, "word_times", cmp.Or(cp.DTW, "estimated"), "system", whispercpp.SystemInfo())
	if hint := q8Hint(name, opts.UseGPU, runtime.GOARCH == "amd64", cpu.X86.HasAVX512F, cpu.X86.HasAVX2, whispercpp.BuiltWithAVX512()); hint != "" {
		log.Info(hint)
	}
	if info.Multilingual {
		// Chinese script conversion loads its tables now, not on a stream's first partial.
		if err := hanzi.Err(); err != nil {
			log.Warn("Chinese script conversion unavailable: Chinese text passes through in the script whisper wrote", "err", err)
		}
	}
	return &whisperModel{name: name, path: path, threads: threads, m: m, log: log}, nil
}

// q8Hint is what LoadWhisper tells the operator of an x86 CPU with AVX2, where the 8-bit
// copy of a float16 model decodes faster for an accuracy cost measured within a WER point:
// on an AVX2-only CPU q8_0 took a third less time (tiny.en and base, offline, and
// EndOfTurn p50 0.93 s against 1.5 s, before llamafile's matrix products). On an AVX-512
// Xeon with them it depends on the build (build512: ggml compiled for AVX-512,
// scripts/whisper.sh's WHISPER_CPU=auto there): about 6 % less (EndOfTurn p50 276 / 274
// against 299 / 289 ms; 30 clips offline 24.3 / 22.9 against 25.6 / 24.3 s), since the
// build took a quarter off float16's decodes and a tenth off q8_0's; in an AVX2-only
// build about 15 % less in live streams (speculative finals 244–280 against 301 ms,
// EndOfTurn p50 median 309 against 369 ms; 4 live streams' final p95 803 against 970 ms;
// a whole pre-recorded window at 1 500 frames no faster). BENCHMARKS.md, Density.
// `make run` serves it by default on such CPUs (scripts/run.sh). It does not switch by
// itself: a model's name names its weights.
func q8Hint(name string, gpu, amd64, avx512, avx2, build512 bool) string {
	if gpu || !amd64 || !avx2 || strings.Contains(name, "-q") {
		return ""
	}
	gain := "about a third faster here (AVX2 without AVX-512)"
	switch {
	case avx512 && build512:
		gain = "about 6 % faster here (AVX-512, whisper.cpp built for it)"
	case avx512:
		gain = "about 15 % faster here in live streams (AVX-512, whisper.cpp built for AVX2 only; pre-recorded no faster)"
	}
	return fmt.Sprintf("the 8-bit copy decodes %s within a WER point (BENCHMARKS.md, Density): choose %s-q8_0 "+
		"(serve --models, transcribe --model; make model or `earshot models quantize` makes it)", gain, name)
}

func (wm *whisperModel) Name() string { return wm.name }

// Languages is 1 for an English-only model, else how many languages it knows.
func (wm *whisperModel) Languages() int { return wm.m.Info().Languages }

// Tokenize splits text into the model's tokens.
func (wm *whisperModel) Tokenize(text string) ([]int, error) {
	ids, err := wm.m.Tokenize(text)
	if errors.Is(err, whispercpp.ErrClosed) {
		return nil, ErrClosed
	}
	return ids, err
}

func (wm *whisperModel) NewDecoder() (Decoder, error) {
	st, err := wm.m.NewState()
	if err != nil {
		if errors.Is(err, whispercpp.ErrClosed) {
			return nil, fmt.Errorf("new decoder for %s: %w", wm.name, ErrClosed)
		}
		return nil, fmt.Errorf("new decoder for %s: %w", wm.name, err)
	}
	return &whisperDecoder{wm: wm, st: st}, nil
}

// Close releases the weights once every Decoder is closed. Idempotent.
func (wm *whisperModel) Close() error { return wm.m.Close() }

// CapThreads caps the threads of every whisper decode of the process (ThreadCapper).
func (wm *whisperModel) CapThreads(n int) { whispercpp.SetThreadCap(n) }

type whisperDecoder struct {
	wm *whisperModel
	st *whispercpp.State
}

// Decode runs one whisper call. Offline requests decode the whole input with
// timestamps (whisper walks long input in 30 s windows), token times and
// temperature fallback. Streaming requests decode one window the way
// whisper.cpp's stream example does: one segment, no timestamp tokens (with
// them, a window shorter than AudioCtx×20 ms was decoded twice over in our
// tests, tiny.en), so token T0/T1 are -1; no temperature
// fallback (the streaming policy has its own guards), non-speech tokens
// suppressed, and the prompt taken only from PromptTokens. With Timestamps, a
// window in a language other than English (after detection) is decoded with
// timestamp tokens in as many segments as whisper makes: asked for Chinese
// without them, whisper base translated or dropped an English sentence inside a
// Chinese utterance (see timestampsBesideEnglish in sched.go).
func (d *whisperDecoder) Decode(ctx context.Context, req DecodeRequest) (Hypothesis, error) {
	p := whispercpp.DefaultParams()
	p.Threads = req.Threads
	if p.Threads <= 0 {
		p.Threads = d.wm.threads
	}
	p.AudioCtx = req.AudioCtx
	p.Language = req.Language
	var detected whispercpp.Language
	if req.DetectLanguage {
		langs, err := d.st.DetectLanguage(ctx, req.Samples, req.AudioCtx, p.Threads)
		if err != nil {
			if errors.Is(err, whispercpp.ErrClosed) {
				return Hypothesis{}, ErrClosed
			}
			return Hypothesis{}, fmt.Errorf("detect language: %w", err)
		}
		detected = among(langs, req.DetectAmong)
		p.Language = detected.Code
	}
	p.PromptTokens = req.PromptTokens
	p.TokenTimestamps = req.Offline || req.WordTimes
	if len(req.BiasTerms) > 0 {
		p.Bias = &whispercpp.Bias{Terms: req.BiasTerms, First: keytermFirstBias, Next: keytermNextBias}
	}
	p.NoContext = true
	if !req.Offline {
		ts := req.Timestamps && p.Language != "en" && p.Language != "" // "" is English too
		p.SingleSegment = !ts
		p.NoTimestamps = !ts
		p.TemperatureInc = 0
		p.BestOf = 1
		p.SuppressNST = true
		p.MaxTokens = req.MaxTokens
		p.Draft = req.Draft
		if draftClassesOn && len(req.Draft) > 0 && (p.Language == "zh" || p.Language == "yue") {
			p.DraftClasses = d.wm.draftClasses(req.Script)
		}
	}
	res, err := d.st.Full(ctx, p, req.Samples)
	if err != nil {
		if errors.Is(err, whispercpp.ErrClosed) {
			return Hypothesis{}, ErrClosed
		}
		return Hypothesis{}, err
	}
	h := Hypothesis{AvgLogprob: res.AvgLogprob, Language: cmp.Or(p.Language, "en"), LanguageP: detected.P,
		DraftProposed: res.Draft.Proposed, DraftAccepted: res.Draft.Accepted, DraftSame: res.Draft.Same}
	var text strings.Builder
	for i, s := range res.Segments {
		if i == 0 {
			h.NoSpeechProb = s.NoSpeechProb
		}
		text.WriteString(s.Text)
		toks := textTokens(s.Tokens)
		h.Tokens = append(h.Tokens, toks...)
		for _, t := range s.Tokens {
			h.Sampled = append(h.Sampled, t.ID)
		}
		if req.Offline {
			h.Segments = append(h.Segments, Segment{
				Start: s.T0, End: s.T1, Text: strings.TrimSpace(strings.ToValidUTF8(s.Text, "")), Tokens: toks,
				NoSpeechProb: s.NoSpeechProb, AvgLogprob: s.AvgLogprob,
			})
		}
	}
	// whisper's tokens are bytes: a character may span two, and a decode cut short by
	// MaxTokens can end inside one. Broken sequences are dropped, never passed on.
	h.Text = strings.TrimSpace(strings.ToValidUTF8(text.String(), ""))
	return h, nil
}

func textTokens(in []whispercpp.Token) []Token {
	out := make([]Token, 0, len(in))
	for _, t := range in {
		if t.Special {
			continue
		}
		out = append(out, Token{ID: t.ID, Text: t.Text, T0: t.T0, T1: t.T1, End: t.TDTW, P: t.P})
	}
	return out
}

func (d *whisperDecoder) Tokenize(text string) ([]int, error) {
	ids, err := d.wm.m.Tokenize(text)
	if errors.Is(err, whispercpp.ErrClosed) {
		return nil, ErrClosed
	}
	return ids, err
}

// Close frees the decoder's whisper_state. Idempotent.
func (d *whisperDecoder) Close() error { return d.st.Close() }

// sileroVAD feeds whisper.cpp's Silero model whole 512-sample windows and
// carries the remainder to the next call.
type sileroVAD struct {
	mu    sync.Mutex
	v     *whispercpp.VAD
	carry []float32
}

// NewSileroVAD loads a ggml Silero VAD model (one private copy, 1 thread).
func NewSileroVAD(path string) (VAD, error) {
	v, err := whispercpp.LoadVAD(path, 1)
	if err != nil {
		return nil, fmt.Errorf("%w: %w (the Silero model ships as ggml-silero-v6.2.0.bin)", ErrModelFile, err)
	}
	return &sileroVAD{v: v, carry: make([]float32, 0, whispercpp.VADWindow)}, nil
}

func (s *sileroVAD) WindowSamples() int { return whispercpp.VADWindow }

func (s *sileroVAD) Process(samples []float32) ([]float32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf := samples
	if len(s.carry) > 0 {
		buf = append(s.carry, samples...)
	}
	n := len(buf) / whispercpp.VADWindow * whispercpp.VADWindow
	probs, err := s.v.DetectSpeechNoReset(buf[:n])
	if err != nil {
		if errors.Is(err, whispercpp.ErrClosed) {
			return nil, ErrClosed
		}
		return nil, err
	}
	s.carry = append(s.carry[:0], buf[n:]...)
	return probs, nil
}

func (s *sileroVAD) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.carry = s.carry[:0]
	_ = s.v.Reset() // only fails when closed; Process reports that
}

func (s *sileroVAD) Close() error { return s.v.Close() }

// RSSBytes is this process's resident set size (0 where /proc is not available): what a
// worker measures its models' memory with.
func RSSBytes() int64 { return rssBytes() }

// rssBytes is the resident set size from /proc/self/statm; 0 where that is
// not available.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// among returns the most likely of langs (most likely first) that is one of codes,
// with its probability renormalised over codes; with no codes, langs[0].
func among(langs []whispercpp.Language, codes []string) whispercpp.Language {
	if len(codes) == 0 {
		return langs[0]
	}
	var best whispercpp.Language
	var sum float32
	for _, l := range langs {
		if slices.Contains(codes, l.Code) {
			if best.Code == "" {
				best = l
			}
			sum += l.P
		}
	}
	if best.Code == "" { // sessionLanguage checked codes against the model: not reached
		return whispercpp.Language{Code: codes[0]}
	}
	if sum > 0 {
		best.P /= sum
	}
	return best
}
