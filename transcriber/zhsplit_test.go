package transcriber

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/hanzi"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/wer"
)

// TestMandarinSplitSim measures where streamed Mandarin loses characters against a
// whole-clip decode: each dev clip is cut into utterances by the stream's endpointer
// (Silero, endpoint silence as the stream's), and every utterance is decoded the way a
// final is, in turn, with the clip's earlier finals as prompt. Variants: each clip
// whole; the utterances alone; the utterances with the previous utterance's audio
// decoded in front of them (left context) and its text removed again; at 600 and 1000 ms
// of endpoint silence. A measurement for BENCHMARKS.md: EARSHOT_BENCH_ZHSPLIT=1 runs those;
// a comma-separated list of variants runs them at 600 ms, where "-xclip" carries the
// earlier clips' text into the prompt (one stream over the set), "-noprompt" decodes every
// utterance without a prompt, and ":ts", ":offline" and
// ":offline1500" choose the decode (timestamp tokens; whisper's offline decode at the
// final's audio_ctx or at 1500), e.g. EARSHOT_BENCH_ZHSPLIT=alone,alone-xclip,alone:ts.
// EARSHOT_SPLIT_LANG=en runs it on the English dev clips with tiny.en, scored by WER;
// EARSHOT_SPLIT_TIGHT=1 (with EARSHOT_SPLIT_LANG=en) decodes with a turn session's
// encoder context (audioCtx's tight); EARSHOT_SPLIT_TAIL_MS keeps that much silence
// after each speech end instead of Pad; EARSHOT_SPLIT_MODEL decodes with another model
// than base (tiny.en in English), e.g. base-q8_0; EARSHOT_SPLIT_CTX=STEP,MARGIN gives the
// finals' encoder context as the frames of the audio plus MARGIN, rounded up to a
// multiple of STEP (at least minFinalAudioCtx; audioCtx's rule is 256,128),
// EARSHOT_SPLIT_PAUSECUT=L,P (ms) cuts an utterance whose speech has lasted L where a
// pause reaches P (a "-uttprompt" variant prompts each piece with the earlier pieces of
// its utterance only), and EARSHOT_SPLIT_VERBOSE=1 logs every decode's window, time and
// tokens (each variant's line has the decodes' total and longest time).
func TestMandarinSplitSim(t *testing.T) {
	if os.Getenv("EARSHOT_BENCH_ZHSPLIT") == "" {
		t.Skip("measurement: set EARSHOT_BENCH_ZHSPLIT=1")
	}
	english := os.Getenv("EARSHOT_SPLIT_LANG") == "en"
	model, manifest, code := "base", testdata.MandarinManifest, "zh"
	if english {
		model, manifest, code = "tiny.en", testdata.SpeechManifest, "en"
	}
	model = cmp.Or(os.Getenv("EARSHOT_SPLIT_MODEL"), model)
	var ctxStep, ctxMargin int
	if v := os.Getenv("EARSHOT_SPLIT_CTX"); v != "" {
		if n, err := fmt.Sscanf(v, "%d,%d", &ctxStep, &ctxMargin); n != 2 || err != nil || ctxStep <= 0 || ctxMargin < 0 {
			t.Fatalf("EARSHOT_SPLIT_CTX=%q: want STEP,MARGIN in frames, e.g. 256,128", v)
		}
	}
	d := realDecoder(t, model)
	v, err := NewSileroVAD(testdata.VAD(t))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	items, err := testdata.LoadManifest(filepath.Join(testdata.Require(t), manifest))
	if err != nil {
		t.Fatal(err)
	}
	pad := uint64(200 * bus.SamplesPerMs)
	// The silence kept after each utterance's speech end: Pad, as a final on /v1/listen
	// has; EARSHOT_SPLIT_TAIL_MS sets another (a turn session's speculative final keeps
	// 32 ms).
	tail := pad
	if v := os.Getenv("EARSHOT_SPLIT_TAIL_MS"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms < 0 {
			t.Fatalf("EARSHOT_SPLIT_TAIL_MS=%q: want milliseconds ≥ 0", v)
		}
		tail = uint64(ms) * bus.SamplesPerMs
	}
	var took []time.Duration // each decode's time, for the variant's summary
	var mode string          // "offline": whisper's offline decode (timestamps, segments, fallback); "offline1500": and the whole encoder context
	decode := func(all []float32, a, b uint64, prompt []string) []string {
		s := all[a:min(int(b), len(all))]
		x := make([]float32, max(len(s), minDecodeSamples))
		copy(x, s)
		req := DecodeRequest{Samples: x, AudioCtx: audioCtx(len(x), true, english && os.Getenv("EARSHOT_SPLIT_TIGHT") == "1"), Threads: 2, MaxTokens: maxTokens(len(x), true), Language: code}
		if ctxStep > 0 {
			req.AudioCtx = max(minFinalAudioCtx, audioCtxRound(len(x), ctxMargin, ctxStep))
		}
		switch mode {
		case "offline":
			req.Offline = true
		case "ts":
			req.Timestamps = true
		case "offline1500":
			req.Offline, req.AudioCtx = true, 0
		}
		if len(prompt) > 0 {
			toks, _ := d.Tokenize(joinUnits(lastWords(prompt, maxHistoryWords)))
			req.PromptTokens = lastN(toks, maxPromptTokens)
		}
		start := time.Now()
		h, err := d.Decode(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(start))
		if os.Getenv("EARSHOT_SPLIT_VERBOSE") != "" {
			t.Logf("decode %.2f s (audio_ctx %d): %v, %d tokens (%d sampled): %s", sec(b-a), req.AudioCtx,
				took[len(took)-1].Round(time.Millisecond), len(h.Tokens), len(h.Sampled), h.Text)
		}
		text, _ := guardText(h, sec(b-a))
		return units(text)
	}
	type clip struct {
		it    testdata.Item
		pcm   []float32
		utts  [][2]uint64
		group []int // the endpoint utterance each of utts is a piece of (pause cuts)
	}
	// EARSHOT_SPLIT_PAUSECUT=L,P (ms): an utterance whose speech has lasted L is cut
	// where a pause reaches P, and the next piece starts where the speech resumes.
	var cutLen, cutPause uint64
	if v := os.Getenv("EARSHOT_SPLIT_PAUSECUT"); v != "" {
		if n, err := fmt.Sscanf(v, "%d,%d", &cutLen, &cutPause); n != 2 || err != nil || cutPause == 0 {
			t.Fatalf("EARSHOT_SPLIT_PAUSECUT=%q: want L,P in ms, e.g. 6000,250", v)
		}
		cutLen, cutPause = cutLen*bus.SamplesPerMs, cutPause*bus.SamplesPerMs
	}
	hangs, variants := []uint64{600, 1000}, []string{"whole", "alone", "left-context"}
	if v := os.Getenv("EARSHOT_BENCH_ZHSPLIT"); v != "1" {
		hangs, variants = []uint64{600}, strings.Split(v, ",")
	}
	for _, hang := range hangs {
		var clips []clip
		for _, it := range items {
			pcm := readWAVFloat(t, it.WAV)
			probs, err := v.Process(pcm)
			if err != nil {
				t.Fatal(err)
			}
			utts, group := speechPieces(probs, v.WindowSamples(), hang*bus.SamplesPerMs, cutLen, cutPause, uint64(len(pcm)))
			clips = append(clips, clip{it, pcm, utts, group})
		}
		for _, variant := range variants {
			var carried []string // the earlier clips' text, for "-xclip" variants
			mode = ""
			if v, m, ok := strings.Cut(variant, ":"); ok {
				variant, mode = v, m
			}
			var c wer.Corpus
			var rows []string
			took = took[:0]
			label := variant
			noPrompt := strings.HasSuffix(variant, "-noprompt")
			variant = strings.TrimSuffix(variant, "-noprompt")
			uttPrompt := strings.HasSuffix(variant, "-uttprompt") // only the earlier pieces of the same utterance
			variant = strings.TrimSuffix(variant, "-uttprompt")
			prompt := func(h []string) []string {
				if noPrompt {
					return nil
				}
				return h
			}
			for _, cl := range clips {
				history := carried
				switch strings.TrimSuffix(variant, "-xclip") {
				case "whole":
					history = append(history, units(hanzi.ToSimplified(joinUnits(decode(cl.pcm, 0, uint64(len(cl.pcm)), nil))))...)
				default:
					var prev []string
					prevStart, prevLen := uint64(0), 0
					var uttFrom int // where the current endpoint utterance's text starts in history
					for i, u := range cl.utts {
						from := u[0] - min(u[0], pad)
						if i == 0 || cl.group[i] != cl.group[i-1] {
							uttFrom = len(history)
						}
						prompt := prompt
						if uttPrompt {
							prompt = func([]string) []string { return history[uttFrom:] }
						}
						var w []string
						if variant == "left-context" && i > 0 && u[1]-prevStart <= 20*bus.SampleRate {
							from = prevStart - min(prevStart, pad)
							dec := decode(cl.pcm, from, u[1]+tail, prompt(history[:len(history)-prevLen]))
							w = dropPrefix(dec, prev)
						} else {
							w = decode(cl.pcm, from, u[1]+tail, prompt(history))
						}
						added := units(hanzi.ToSimplified(joinUnits(w))) // the prompt in the stream's script
						history = append(history, added...)
						prev, prevStart, prevLen = w, u[0], len(added)
					}
				}
				own := joinUnits(history[len(carried):])
				if strings.HasSuffix(variant, "-xclip") {
					carried = history
				}
				var cu wer.Counts
				if english {
					cu = c.Add(cl.it.Reference, own)
				} else {
					cu = c.AddZh(cl.it.Reference, own)
				}
				rows = append(rows, fmt.Sprintf("%s %d utts %.0f%%: %s", cl.it.ID, len(cl.utts), 100*cu.Rate(), own))
				for i, u := range cl.utts {
					if i > 0 && cl.group[i] == cl.group[i-1] {
						rows[len(rows)-1] += fmt.Sprintf(" [cut %.2f–%.2f s]", sec(cl.utts[i-1][1]), sec(u[0]))
					}
				}
			}
			if len(took) == 0 {
				t.Fatalf("%s: nothing decoded", label)
			}
			slices.Sort(took)
			var sum time.Duration
			for _, d := range took {
				sum += d
			}
			t.Logf("%s, endpoint %d ms, %s: error rate %.2f%% (%d/%d); %d decodes, %v in all, the longest %v\n%s", model, hang, label,
				100*c.Rate(), c.Errors(), c.Ref, len(took), sum.Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), strings.Join(rows, "\n"))
		}
	}
}

// speechPieces is where the stream's endpointer (hangover hang) hears utterances in a
// recording of total samples, from the VAD's per-window probabilities: [start, end) of
// each piece, and the endpoint utterance each piece belongs to. With cutPause > 0 an
// utterance whose speech has lasted cutLen is cut where a pause reaches cutPause, and its
// next piece starts at the window where the speech resumes (all in samples).
func speechPieces(probs []float32, win int, hang, cutLen, cutPause, total uint64) (utts [][2]uint64, group []int) {
	ep := newEndpointer(win, 0, hang)
	open, utterances := false, 0
	for _, p := range probs {
		switch ep.push(p) {
		case evSpeechStart:
			utts, group, open = append(utts, [2]uint64{ep.speechStart, 0}), append(group, utterances), true
			utterances++
		case evSpeechEnd:
			if open {
				utts[len(utts)-1][1] = ep.speechEnd
			}
			open = false
		default:
			switch {
			case cutPause == 0 || !ep.inSpeech:
			case open && ep.silence >= cutPause && ep.speechEnd-utts[len(utts)-1][0] >= cutLen:
				utts[len(utts)-1][1], open = ep.speechEnd, false
			case !open && ep.silence == 0:
				utts, group, open = append(utts, [2]uint64{ep.speechEnd - ep.win, 0}), append(group, group[len(group)-1]), true
			}
		}
	}
	if n := len(utts); n > 0 && utts[n-1][1] == 0 {
		utts[n-1][1] = total
	}
	return utts, group
}

// TestSpeechPieces checks the pause cuts TestMandarinSplitSim's EARSHOT_SPLIT_PAUSECUT
// measures, on synthetic VAD probabilities (512-sample windows, 32 ms): 8 s of speech
// with a 160 ms dip at 2 s and a 320 ms dip at 7 s, 1 s of silence, 2 s of speech.
func TestSpeechPieces(t *testing.T) {
	const win = 512
	w := func(ms int) int { return ms * bus.SamplesPerMs / win }
	var probs []float32
	add := func(ms int, p float32) {
		for range w(ms) {
			probs = append(probs, p)
		}
	}
	add(2000, 0.9)
	add(160, 0.1)
	add(4992, 0.9)
	add(320, 0.1)
	add(1024, 0.9)
	add(1024, 0.1)
	add(1984, 0.9)
	add(800, 0.1)
	total := uint64(len(probs) * win)
	at := func(i int) uint64 { return uint64(i * win) } // the start of window i
	hang := uint64(600 * bus.SamplesPerMs)
	ms := func(n uint64) uint64 { return n * bus.SamplesPerMs }

	utts, group := speechPieces(probs, win, hang, 0, 0, total)
	if len(utts) != 2 || !slices.Equal(group, []int{0, 1}) {
		t.Fatalf("no cuts: %d utterances, groups %v; want the two endpoint utterances", len(utts), group)
	}
	// The endpointer confirms speech minSpeech after its start and dates it back.
	second := w(2000) + w(160) + w(4992) + w(320) + w(1024) + w(1024)
	if utts[0] != [2]uint64{0, at(second - w(1024))} || utts[1] != [2]uint64{at(second), at(second + w(1984))} {
		t.Errorf("no cuts: %v", utts)
	}

	utts, group = speechPieces(probs, win, hang, ms(6000), ms(250), total)
	resume := w(2000) + w(160) + w(4992) + w(320)
	want := [][2]uint64{{0, at(resume - w(320))}, {at(resume), at(second - w(1024))}, {at(second), at(second + w(1984))}}
	if !slices.Equal(utts, want) || !slices.Equal(group, []int{0, 0, 1}) {
		t.Errorf("cut after 6 s at a 250 ms pause: %v groups %v; want %v groups [0 0 1] (the 160 ms dip too short, the second utterance too short)", utts, group, want)
	}

	// At 150 ms the 160 ms dip is a pause too, but it comes before 6 s of speech: the
	// same cuts. With L = 1 s it is cut there as well.
	if utts, _ = speechPieces(probs, win, hang, ms(6000), ms(150), total); !slices.Equal(utts, want) {
		t.Errorf("cut after 6 s at a 150 ms pause: %v; want %v (the dip at 2 s comes before 6 s of speech)", utts, want)
	}
	utts, _ = speechPieces(probs, win, hang, ms(1000), ms(150), total)
	if len(utts) != 4 || utts[0][1] != at(w(2000)) || utts[1][0] != at(w(2000)+w(160)) {
		t.Errorf("cut after 1 s at a 150 ms pause: %v; want the 2 s dip and the 7 s dip cut", utts)
	}
}

// dropPrefix removes from dec the prefix that best matches prev (least edit distance;
// of equal ones the longest).
func dropPrefix(dec, prev []string) []string {
	row := make([]int, len(dec)+1) // distance of prev[:i] to dec[:k]
	for k := range row {
		row[k] = k
	}
	for i := 1; i <= len(prev); i++ {
		next := make([]int, len(dec)+1)
		next[0] = i
		for k := 1; k <= len(dec); k++ {
			sub := row[k-1]
			if prev[i-1] != dec[k-1] {
				sub++
			}
			next[k] = min(sub, row[k]+1, next[k-1]+1)
		}
		row = next
	}
	best := 0
	for k := range row {
		if row[k] <= row[best] {
			best = k
		}
	}
	return dec[best:]
}

// TestStreamMandarinRealEngine streams the Mandarin dev clips, each followed by 1 s of
// silence (as `earshot bench --manifest` does), in real time through a Pool on real
// whisper base with language zh-CN, and logs each clip's finals and CER: the engine's
// half of the streamed CER in BENCHMARKS.md, without the gateway. A measurement:
// EARSHOT_BENCH_ZHSTREAM=1 (EARSHOT_STREAM_DEBUG=1 logs the policy's decisions;
// EARSHOT_ZH_PROMPT=1 gives the decodes the earlier clips' text as prompt, as before).
func TestStreamMandarinRealEngine(t *testing.T) {
	if os.Getenv("EARSHOT_BENCH_ZHSTREAM") == "" {
		t.Skip("measurement: set EARSHOT_BENCH_ZHSTREAM=1")
	}
	m, err := LoadWhisper(testdata.Model(t, "base"), LoadOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	vadPath := testdata.VAD(t)
	items, err := testdata.LoadManifest(filepath.Join(testdata.Require(t), testdata.MandarinManifest))
	if err != nil {
		t.Fatal(err)
	}
	if v := os.Getenv("EARSHOT_ZH_PACE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("EARSHOT_ZH_PACE=%q: want a whole number ≥ 1", v)
		}
		realTimePace = n
		defer func() { realTimePace = 1 }()
	}
	if os.Getenv("EARSHOT_ZH_TS") == "0" {
		timestampsBesideEnglish = false
		defer func() { timestampsBesideEnglish = true }()
	}
	if os.Getenv("EARSHOT_ZH_PROMPT") == "1" {
		promptBesideEnglish = true // the earlier clips' text in the prompt, as before 2026-12-05
		defer func() { promptBesideEnglish = false }()
	}
	if os.Getenv("EARSHOT_ZH_WHOLE") == "0" {
		// Finals over the partials' trimmed window, as before 2026-12-06 (an untrimmed
		// final still takes its decode's words, which before it did only where they did
		// not hold the commits: the "before" runs in BENCHMARKS.md are the older commit's).
		wholeBesideEnglish = false
		defer func() { wholeBesideEnglish = true }()
	}
	var pcm []int16
	var bounds []int
	for _, it := range items {
		pcm = append(pcm, readWAV(t, it.WAV)...)
		bounds = append(bounds, len(pcm))
		pcm = append(pcm, make([]int16, bus.SampleRate)...)
	}
	cfg := PoolConfig{Models: map[string]Model{"base": m}, NewVAD: func() (VAD, error) { return NewSileroVAD(vadPath) }, Slots: 1,
		ThreadsPerDecode: 2, Log: streamDebugLog()}
	pool, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	got, writeAt := streamRealTime(t, pool, bus.SessionRequest{Session: "zh", Model: "base", Channels: 1,
		Options: bus.StreamOptions{InterimResults: true, Language: "zh-CN"}}, pcm)
	hyp := make([][]string, len(items))
	partials := 0
	var lat []time.Duration // each final after the chunk holding its last word's end
	var slow []string       // the finals that took longest, with their utterance's length
	for _, g := range got {
		if !utf8.ValidString(g.r.Text) || strings.ContainsRune(g.r.Text, utf8.RuneError) {
			t.Errorf("broken UTF-8 in a %s: %q", g.r.Type, g.r.Text)
		}
		if g.r.Type == bus.ResultPartial {
			partials++
		}
		if g.r.Type != bus.ResultFinal || g.r.Text == "" {
			continue
		}
		end := g.r.Start + g.r.Duration
		if n := len(g.r.Words); n > 0 {
			end = g.r.Words[n-1].End
		}
		d := g.at.Sub(writeAt[min(len(writeAt)-1, int(end*bus.SampleRate)/realTimeChunk)])
		lat = append(lat, d)
		slow = append(slow, fmt.Sprintf("%6d ms after a %4.1f s utterance", d.Milliseconds(), g.r.Duration))
		mid := int((g.r.Start + g.r.Duration/2) * bus.SampleRate)
		i := 0
		for i < len(bounds)-1 && mid > bounds[i] {
			i++
		}
		hyp[i] = append(hyp[i], g.r.Text)
	}
	var c wer.Corpus
	for i, it := range items {
		cu := c.AddZh(it.Reference, strings.Join(hyp[i], ""))
		t.Logf("%-36s CER %5.1f%%  %s", it.ID, 100*cu.Rate(), strings.Join(hyp[i], " | "))
	}
	slices.Sort(slow)
	t.Logf("slowest finals: %s", strings.Join(slow[max(0, len(slow)-4):], "; "))
	t.Logf("streamed CER %.2f%% (%d/%d), %d partials, final after its last word p50 %v p95 %v (%d finals), pace %d, "+
		"timestamps beside English %v, earlier text in the prompt %v, whole finals beside English %v, drafts %v",
		100*c.Rate(), c.Errors(), c.Ref, partials, pct(lat, 0.5).Round(time.Millisecond), pct(lat, 0.95).Round(time.Millisecond),
		len(lat), realTimePace, timestampsBesideEnglish, promptBesideEnglish, wholeBesideEnglish, draftDecodes)
}
