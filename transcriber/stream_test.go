package transcriber

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/lang"
)

// checkPartials asserts the user-visible streaming contract: within an utterance, the
// words a partial declared stable are a prefix of every later partial and of the final;
// StableWords never decreases; no unstable guess ("~") is ever stable.
func checkPartials(t *testing.T, rs []bus.Result) {
	t.Helper()
	var stable []string
	for i, r := range rs {
		switch r.Type {
		case bus.ResultPartial, bus.ResultFinal:
			w := strings.Fields(r.Text)
			if len(w) < len(stable) || strings.Join(w[:len(stable)], " ") != strings.Join(stable, " ") {
				t.Errorf("result %d (%s %q) does not start with the stable words %q", i, r.Type, r.Text, stable)
			}
			if r.Type == bus.ResultFinal {
				stable = nil
				continue
			}
			if r.StableWords < len(stable) || r.StableWords > len(w) {
				t.Errorf("partial %d %q: StableWords %d after %d", i, r.Text, r.StableWords, len(stable))
				continue
			}
			stable = w[:r.StableWords]
			if strings.Contains(strings.Join(stable, " "), "~") {
				t.Errorf("partial %d %q committed an unstable guess", i, r.Text)
			}
		}
	}
}

func TestStreamPartialsAndEndpointFinal(t *testing.T) {
	rig := newFakeRig(t, PoolConfig{}, nil)
	s, c := rig.open(bus.StreamOptions{InterimResults: true, VADEvents: true, UtteranceEndMs: 1000})
	pos := rig.feed(s, c, silence(500), 0, 0)
	speechStart := pos
	pos = rig.feed(s, c, speech(0, 1, 2, 3, 4, 5, 6, 7), pos, 0)
	speechEnd := pos - fakeGapMs*bus.SamplesPerMs
	rig.feed(s, c, silence(1500), pos, 0)

	rs := c.results()
	checkPartials(t, rs)
	if rs[0].Type != bus.ResultSpeechStarted || rs[0].Start < sec(speechStart)-0.05 || rs[0].Start > sec(speechStart)+0.05 {
		t.Errorf("first result %+v, want speech_started at %.2f s", rs[0], sec(speechStart))
	}
	partials := c.ofType(bus.ResultPartial)
	if len(partials) < 5 {
		t.Fatalf("%d partials for 2.4 s of speech at a 300 ms step", len(partials))
	}
	finals := c.ofType(bus.ResultFinal)
	if len(finals) != 1 {
		t.Fatalf("finals %+v, want 1", finals)
	}
	f := finals[0]
	if want := strings.Join(fakeVocab, " "); f.Text != want || !f.SpeechFinal {
		t.Errorf("final %q speech_final=%v, want %q by endpointing", f.Text, f.SpeechFinal, want)
	}
	var at uint64
	for i, r := range c.rs {
		if r.Type == bus.ResultFinal {
			at = c.at[i]
		}
	}
	if lag := sec(at - speechEnd); lag > 0.6+0.3+0.05 {
		t.Errorf("final came %.2f s of audio after speech ended, want ≤ endpoint 0.6 + step 0.3", lag)
	}
	if f.EndSample < speechEnd || f.EndSample > at || len(f.Words) != 8 {
		t.Errorf("final EndSample %d (speech end %d, fed %d), %d words", f.EndSample, speechEnd, at, len(f.Words))
	}
	if w := f.Words[0]; w.Start < sec(speechStart)-0.05 || f.Words[7].End > sec(speechEnd)+0.05 {
		t.Errorf("word times %.2f..%.2f outside speech %.2f..%.2f", w.Start, f.Words[7].End, sec(speechStart), sec(speechEnd))
	}
	ue := c.ofType(bus.ResultUtteranceEnd)
	if len(ue) != 1 || ue[0].LastWordEnd != f.Words[7].End || rs[len(rs)-1].Type != bus.ResultUtteranceEnd {
		t.Errorf("utterance_end %+v, want one after the final with its last word end", ue)
	}
	for i := 1; i < len(rs); i++ {
		if rs[i].Seq != rs[i-1].Seq+1 {
			t.Fatalf("seq %d after %d", rs[i].Seq, rs[i-1].Seq)
		}
	}
	// Every decode is capped in tokens by its window, so a looping decode cannot hold
	// the slot: 12 tokens + 10 per second of window.
	rig.dec.mu.Lock()
	defer rig.dec.mu.Unlock()
	for _, q := range rig.dec.reqs {
		secs := float64(len(q.Samples)) / bus.SampleRate
		if want := 12 + 10*secs; q.MaxTokens < 12 || float64(q.MaxTokens) > want+1 || float64(q.MaxTokens) < want-1 {
			t.Fatalf("decode of ~%.2f s capped at %d tokens, want about %.0f", secs, q.MaxTokens, want)
		}
	}
}

func TestMaxTokens(t *testing.T) {
	for _, c := range []struct{ samples, want int }{{0, 12}, {bus.SampleRate / 2, 17}, {10 * bus.SampleRate, 112}, {30 * bus.SampleRate, 312}} {
		if got := maxTokens(c.samples, false); got != c.want {
			t.Errorf("maxTokens(%d) = %d, want %d", c.samples, got, c.want)
		}
	}
}

func TestStreamNoInterimMeansFinalsOnly(t *testing.T) {
	rig := newFakeRig(t, PoolConfig{}, nil)
	s, c := rig.open(bus.StreamOptions{})
	pos := rig.feed(s, c, speech(1, 2, 3), 0, 0)
	rig.feed(s, c, silence(1000), pos, 0)
	if rs := c.results(); len(rs) != 1 || rs[0].Type != bus.ResultFinal || rs[0].Text != "bravo charlie delta" {
		t.Errorf("results %+v, want one final", rs)
	}
	if n := rig.dec.calls.Load(); n != 1 {
		t.Errorf("%d decodes without interim results, want 1", n)
	}
}

func TestStreamFinalizeAndEnd(t *testing.T) {
	rig := newFakeRig(t, PoolConfig{}, nil)
	s, c := rig.open(bus.StreamOptions{InterimResults: true, EndpointingMs: -1})
	pos := rig.feed(s, c, speech(0, 1, 2), 0, 0)
	pos = rig.feed(s, c, silence(2000), pos, bus.FlagFinalize)
	finals := c.ofType(bus.ResultFinal)
	if len(finals) != 1 || finals[0].Text != "alpha bravo charlie" || !finals[0].FromFinalize || finals[0].SpeechFinal {
		t.Fatalf("after Finalize with endpointing off: finals %+v", finals)
	}
	if finals[0].EndSample != pos {
		t.Errorf("finalize EndSample %d, want %d (all audio sent)", finals[0].EndSample, pos)
	}
	// Finalize with nothing open is still answered.
	pos = rig.feed(s, c, silence(100), pos, bus.FlagFinalize)
	if f := c.ofType(bus.ResultFinal); len(f) != 2 || f[1].Text != "" || !f[1].FromFinalize {
		t.Fatalf("empty finalize: %+v", f)
	}
	pos = rig.feed(s, c, speech(3, 4), pos, bus.FlagEnd)
	rs := c.results()
	last := rs[len(rs)-1]
	if last.Type != bus.ResultClosed {
		t.Fatalf("last result %+v, want closed", last)
	}
	f := c.ofType(bus.ResultFinal)
	if got := f[len(f)-1]; got.Text != "delta echo" || got.FromFinalize || got.EndSample != pos {
		t.Errorf("End final %+v, want 'delta echo' up to %d", got, pos)
	}
	checkPartials(t, rs)
	if err := s.Write(&bus.AudioChunk{StartSample: pos, PCM: silence(20)}); !errors.Is(err, ErrClosed) {
		t.Errorf("write after End: %v, want ErrClosed", err)
	}
}

func TestStreamSilenceEmitsNothing(t *testing.T) {
	rig := newFakeRig(t, PoolConfig{}, nil)
	s, c := rig.open(bus.StreamOptions{InterimResults: true, VADEvents: true, UtteranceEndMs: 1000})
	quiet := silence(5000)
	for i := range quiet {
		quiet[i] = int16((i*7919)%301 - 150) // ±0.5 % hiss
	}
	rig.feed(s, c, quiet, 0, bus.FlagEnd)
	if rs := c.results(); len(rs) != 1 || rs[0].Type != bus.ResultClosed {
		t.Errorf("silence gave %+v, want only closed", rs)
	}
	if n := rig.dec.calls.Load(); n != 0 {
		t.Errorf("silence was decoded %d times", n)
	}
}

// Long silence gives no final, so the worker says every 10 s that nothing before a
// point can need the audio again (ResultSettled): the gateway's replay buffer, which
// otherwise holds all audio since the last final, stays bounded.
func TestStreamLongSilenceSettles(t *testing.T) {
	rig := newFakeRig(t, PoolConfig{}, nil)
	s, c := rig.open(bus.StreamOptions{InterimResults: true, VADEvents: true})
	quiet := silence(35000)
	for i := range quiet {
		quiet[i] = int16((i*7919)%301 - 150) // ±0.5 % hiss
	}
	rig.feed(s, c, quiet, 0, bus.FlagEnd)
	rs := c.results()
	var marks []uint64
	for _, r := range rs {
		switch r.Type {
		case bus.ResultSettled:
			marks = append(marks, r.EndSample)
		case bus.ResultClosed:
		default:
			t.Fatalf("silence gave %+v", r)
		}
	}
	if len(marks) < 2 {
		t.Fatalf("settled marks %v over 35 s of silence, want one per 10 s", marks)
	}
	for i, m := range marks {
		if m > uint64(len(quiet)) || i > 0 && m < marks[i-1]+10*bus.SampleRate {
			t.Fatalf("settled marks %v: not 10 s apart within the %d samples fed", marks, len(quiet))
		}
	}
	if last := marks[len(marks)-1]; uint64(len(quiet))-last > 12*bus.SampleRate {
		t.Fatalf("last settled mark %d leaves %d samples unsettled", last, uint64(len(quiet))-last)
	}
}

func TestStreamGuardsDropInventedText(t *testing.T) {
	tests := []struct {
		name string
		hyp  func(string) Hypothesis
		want string
	}{
		{"thanks for watching", func(string) Hypothesis {
			return Hypothesis{Text: "Thanks for watching!", AvgLogprob: -0.3}
		}, ""},
		{"low-confidence you", func(string) Hypothesis {
			return Hypothesis{Text: " you", AvgLogprob: -1.1, NoSpeechProb: 0.4}
		}, ""},
		{"no speech", func(s string) Hypothesis {
			return Hypothesis{Text: s, AvgLogprob: -1.5, NoSpeechProb: 0.9}
		}, ""},
		{"repetition loop", func(s string) Hypothesis {
			return Hypothesis{Text: s + " go go go go go go go go", AvgLogprob: -0.3}
		}, "alpha bravo go"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newFakeRig(t, PoolConfig{}, &scriptedDecoder{Override: tt.hyp})
			s, c := rig.open(bus.StreamOptions{InterimResults: true})
			pos := rig.feed(s, c, speech(0, 1), 0, 0)
			rig.feed(s, c, silence(1000), pos, 0)
			var texts []string
			for _, r := range c.results() {
				if strings.Contains(r.Text, "watching") || strings.Contains(r.Text, "go go go go") || r.Text == "you" {
					t.Errorf("invented text emitted: %+v", r)
				}
				if r.Type == bus.ResultFinal {
					texts = append(texts, r.Text)
				}
			}
			if got := strings.Join(texts, "|"); got != tt.want {
				t.Errorf("finals %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStreamMaxSegmentForcesFinal(t *testing.T) {
	rig := newFakeRig(t, PoolConfig{MaxSegment: 3 * time.Second}, nil)
	s, c := rig.open(bus.StreamOptions{InterimResults: true})
	var words []int
	for i := 0; i < 20; i++ { // 6 s of continuous speech
		words = append(words, i%8)
	}
	pos := rig.feed(s, c, speech(words...), 0, 0)
	rig.feed(s, c, silence(1000), pos, 0)
	finals := c.ofType(bus.ResultFinal)
	if len(finals) < 2 {
		t.Fatalf("%d finals for 6 s of speech with MaxSegment 3 s", len(finals))
	}
	for _, f := range finals[:len(finals)-1] {
		if f.SpeechFinal || f.Duration > 3.05 {
			t.Errorf("forced final %+v: want speech_final=false, ≤ 3 s", f)
		}
	}
	for i := 1; i < len(finals); i++ {
		if finals[i].Start < sec(finals[i-1].EndSample)-0.001 {
			t.Errorf("final %d starts at %.2f before the previous end %.2f", i, finals[i].Start, sec(finals[i-1].EndSample))
		}
	}
	checkPartials(t, c.results())
}

func TestStreamBufferOverflow(t *testing.T) {
	rig := newFakeRig(t, PoolConfig{MaxSegment: 5 * time.Second, MaxBuffer: 10 * time.Second}, &scriptedDecoder{Block: true})
	s, c := rig.open(bus.StreamOptions{InterimResults: true})
	pcm := speech(0, 1, 2, 3, 4, 5, 6, 7)
	var err error
	var pos uint64
	for i := 0; i < 10 && err == nil; i++ { // 24 s of speech, decoder stuck
		for j := 0; j < len(pcm) && err == nil; j += 320 {
			err = s.Write(&bus.AudioChunk{StartSample: pos, PCM: pcm[j:min(j+320, len(pcm))]})
			pos += uint64(min(320, len(pcm)-j))
		}
	}
	if !errors.Is(err, ErrOverloaded) {
		t.Fatalf("write with a stuck decoder: %v, want ErrOverloaded", err)
	}
	if sec(pos) > 10.1 {
		t.Errorf("overloaded only after %.1f s", sec(pos))
	}
	rs := c.results()
	if last := rs[len(rs)-1]; last.Type != bus.ResultError || last.Code != bus.CodeOverloaded {
		t.Errorf("last result %+v, want an OVERLOADED error", last)
	}
	if err := s.Write(&bus.AudioChunk{StartSample: pos, PCM: silence(20)}); !errors.Is(err, ErrOverloaded) {
		t.Errorf("write after overload: %v", err)
	}
}

func TestStreamCloseStopsEmitting(t *testing.T) {
	dec := &scriptedDecoder{Block: true}
	rig := newFakeRig(t, PoolConfig{}, dec)
	s, c := rig.open(bus.StreamOptions{InterimResults: true})
	pcm := speech(0, 1, 2)
	for j := 0; j < len(pcm); j += 320 {
		rig.clock.Advance(20 * time.Millisecond)
		if err := s.Write(&bus.AudioChunk{StartSample: uint64(j), PCM: pcm[j:min(j+320, len(pcm))]}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for dec.inFlight.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if dec.inFlight.Load() == 0 {
		t.Fatal("no decode started")
	}
	if free := rig.pool.Capacity("fake").Free; free != rig.pool.cfg.MaxSessions-1 {
		t.Errorf("free %d with one session open", free)
	}
	start := time.Now()
	s.Close()
	c.closed.Store(true)
	rig.waitIdle()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close and abort took %v", d)
	}
	if dec.aborted.Load() != 1 {
		t.Errorf("in-flight decode not aborted")
	}
	if err := s.Write(&bus.AudioChunk{StartSample: uint64(len(pcm)), PCM: silence(20)}); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
	if c.late.Load() != 0 {
		t.Errorf("%d results after Close", c.late.Load())
	}
	if free := rig.pool.Capacity("fake").Free; free != rig.pool.cfg.MaxSessions {
		t.Errorf("free %d after Close, want %d", free, rig.pool.cfg.MaxSessions)
	}
}

// TestStreamDraftsFromEarlierDecodes checks the drafts a stream hands its decoder
// (stream.draft): both utterances' later decodes get drafts, and every draft holds only
// tokens the same utterance's decodes sampled, never the utterance before's (the scripted
// decoder's ids say which words a window holds).
func TestStreamDraftsFromEarlierDecodes(t *testing.T) {
	rig := newFakeRig(t, PoolConfig{}, nil)
	s, c := rig.open(bus.StreamOptions{InterimResults: true})
	pos := rig.feed(s, c, speech(0, 1, 2, 3, 0, 1, 2, 3), 0, 0)
	pos = rig.feed(s, c, silence(1000), pos, 0)
	rig.feed(s, c, append(speech(4, 5, 6, 4, 5, 6), silence(1000)...), pos, 0)
	if f := c.ofType(bus.ResultFinal); len(f) != 2 {
		t.Fatalf("finals %+v, want 2", f)
	}
	rig.dec.mu.Lock()
	defer rig.dec.mu.Unlock()
	first := fakeIDs(strings.Join(fakeVocab[:4], " "))
	var drafted [2]int // decodes with a draft, per utterance
	for i, r := range rig.dec.reqs {
		heard := rig.dec.heard[i]
		if len(r.Draft) == 0 || len(heard) == 0 {
			continue
		}
		u := 1 // the utterance the window holds
		if slices.Contains(first, heard[0]) {
			u = 0
		}
		drafted[u]++
		for _, id := range r.Draft {
			if slices.Contains(first, id) != (u == 0) {
				t.Errorf("decode %d of utterance %d (hears %v): draft %v holds the other utterance's tokens", i, u+1, heard, r.Draft)
				break
			}
		}
	}
	if drafted[0] == 0 || drafted[1] == 0 {
		t.Errorf("decodes with a draft per utterance %v of %d decodes, want some in each", drafted, len(rig.dec.reqs))
	}
}

func TestStreamResumeAndReplayOverlap(t *testing.T) {
	rig := newFakeRig(t, PoolConfig{}, nil)
	c := &collector{}
	const resume = 48000 // 3 s into the stream
	s, err := rig.pool.Open(bus.SessionRequest{Session: "s", Model: "fake", Channels: 1, ResumeSample: resume, Prompt: "earlier words"}, c.emit)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pcm := speech(2, 3)
	pos := rig.feed(s, c, pcm[:4800], resume, 0)
	// A replayed chunk overlapping what was already written is trimmed.
	pos = rig.feed(s, c, pcm[3200:], pos-1600, 0)
	rig.feed(s, c, silence(1000), pos, 0)
	f := c.ofType(bus.ResultFinal)
	if len(f) != 1 || f[0].Text != "charlie delta" || f[0].Start < 3 || f[0].EndSample <= resume {
		t.Fatalf("finals %+v, want 'charlie delta' after 3 s", f)
	}
	rig.dec.mu.Lock()
	defer rig.dec.mu.Unlock()
	// The final (over more than shortSpeech) has the request's prompt as context.
	if last := rig.dec.reqs[len(rig.dec.reqs)-1]; len(last.PromptTokens) != 2 {
		t.Errorf("final's prompt tokens %v, want the 2 words of the request prompt", last.PromptTokens)
	}
}

// TestStreamDecodesInTheSessionsScript: every decode of a zh-CN stream asks for
// simplified characters and of a zh-TW stream for traditional ones (DecodeRequest.Script),
// which is what lets a Chinese decode take its draft's token of the same text in that
// script (whisper patch 0014) when whisper writes the other script.
func TestStreamDecodesInTheSessionsScript(t *testing.T) {
	for _, c := range []struct {
		language string
		want     lang.Script
	}{{"zh-CN", lang.Simplified}, {"zh-TW", lang.Traditional}} {
		t.Run("language="+c.language, func(t *testing.T) {
			rig := newFakeRig(t, PoolConfig{}, nil)
			s, col := rig.open(bus.StreamOptions{InterimResults: true, Language: c.language})
			defer s.Close()
			rig.feed(s, col, cat(speech(1, 2, 3), silence(1000)), 0, 0)
			if len(col.ofType(bus.ResultFinal)) != 1 {
				t.Fatalf("finals %+v, want one", col.ofType(bus.ResultFinal))
			}
			rig.dec.mu.Lock()
			defer rig.dec.mu.Unlock()
			if len(rig.dec.reqs) < 2 {
				t.Fatalf("%d decodes, want partials and a final", len(rig.dec.reqs))
			}
			for i, r := range rig.dec.reqs {
				if r.Script != c.want {
					t.Errorf("decode %d of %d asks for script %q, want %q", i+1, len(rig.dec.reqs), r.Script, c.want)
				}
			}
		})
	}
}

// TestStreamPromptEarlierTextInEnglishOnly: a decode gets the stream's earlier finals as
// its prompt in English (the default and language=en), not in another language, where
// unrelated earlier text cost more characters than related text saved and made whisper
// drop an English sentence after Chinese ones (earlierTextInPrompt).
func TestStreamPromptEarlierTextInEnglishOnly(t *testing.T) {
	for _, c := range []struct {
		language string
		prompted bool
	}{{"", true}, {"en", true}, {"en-US", true}, {"zh-CN", false}, {"de", false}} {
		t.Run("language="+c.language, func(t *testing.T) {
			rig := newFakeRig(t, PoolConfig{}, nil)
			s, col := rig.open(bus.StreamOptions{Language: c.language})
			defer s.Close()
			pos := rig.feed(s, col, cat(speech(1, 2), silence(1000)), 0, 0)
			rig.dec.mu.Lock()
			first := len(rig.dec.reqs)
			rig.dec.mu.Unlock()
			rig.feed(s, col, cat(speech(3, 4), silence(1000)), pos, 0)
			if f := col.ofType(bus.ResultFinal); len(f) != 2 || f[1].Text != "delta echo" {
				t.Fatalf("finals %+v, want 'bravo charlie' then 'delta echo'", f)
			}
			rig.dec.mu.Lock()
			defer rig.dec.mu.Unlock()
			second := rig.dec.reqs[first:]
			if len(second) == 0 {
				t.Fatal("no decode of the second utterance")
			}
			prompted := 0
			for _, r := range second {
				if len(r.PromptTokens) > 0 {
					prompted++
				}
			}
			switch {
			case c.prompted && len(second[len(second)-1].PromptTokens) != 2:
				t.Errorf("the second utterance's final has prompt %v, want the 2 words of the first", second[len(second)-1].PromptTokens)
			case !c.prompted && prompted > 0:
				t.Errorf("%d of the second utterance's %d decodes had a prompt: want none beside English", prompted, len(second))
			}
		})
	}
}

func TestStreamMultiChannel(t *testing.T) {
	rig := newFakeRig(t, PoolConfig{}, nil)
	c := &collector{}
	s, err := rig.pool.Open(bus.SessionRequest{Session: "s", Model: "fake", Channels: 2}, c.emit)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	left := cat(speech(0, 1), silence(1200))
	right := cat(silence(600), speech(5, 6), silence(600))
	for i := 0; i < len(left); i += 320 {
		rig.clock.Advance(20 * time.Millisecond)
		for ch, pcm := range [][]int16{left, right} {
			if err := s.Write(&bus.AudioChunk{Channel: ch, StartSample: uint64(i), PCM: pcm[i:min(i+320, len(pcm))]}); err != nil {
				t.Fatal(err)
			}
		}
		rig.waitIdle()
	}
	got := map[int]string{}
	for _, r := range c.ofType(bus.ResultFinal) {
		got[r.Channel] += r.Text
	}
	if got[0] != "alpha bravo" || got[1] != "foxtrot golf" {
		t.Errorf("finals by channel %v", got)
	}
	if err := s.Write(&bus.AudioChunk{Channel: 2, PCM: silence(20)}); err == nil {
		t.Error("chunk of a third channel accepted")
	}
}

// TestStreamSpeculativeFinal: the final's decode starts once Pad of silence follows the
// speech; if the silence holds to the endpoint that decode is the final (one decode in
// all), and if speech resumes it is only a partial and the final covers every word.
func TestStreamSpeculativeFinal(t *testing.T) {
	t.Run("silence holds", func(t *testing.T) {
		rig := newFakeRig(t, PoolConfig{}, nil)
		s, c := rig.open(bus.StreamOptions{})
		pos := rig.feed(s, c, speech(1, 2, 3), 0, 0)
		rig.feed(s, c, silence(1000), pos, 0)
		if f := c.ofType(bus.ResultFinal); len(f) != 1 || f[0].Text != "bravo charlie delta" || !f[0].SpeechFinal {
			t.Fatalf("finals %+v", f)
		}
		if n := rig.dec.calls.Load(); n != 1 {
			t.Errorf("%d decodes, want the speculative one only", n)
		}
	})
	t.Run("speech resumes", func(t *testing.T) {
		rig := newFakeRig(t, PoolConfig{}, nil)
		s, c := rig.open(bus.StreamOptions{InterimResults: true})
		pos := rig.feed(s, c, speech(1, 2), 0, 0)
		pos = rig.feed(s, c, silence(300), pos, 0) // a pause shorter than the endpoint
		pos = rig.feed(s, c, speech(3, 4), pos, 0)
		rig.feed(s, c, silence(1000), pos, 0)
		rs := c.results()
		checkPartials(t, rs)
		f := c.ofType(bus.ResultFinal)
		if len(f) != 1 || f[0].Text != "bravo charlie delta echo" {
			t.Fatalf("finals %+v, want one with all four words", f)
		}
		spec := false
		for _, p := range c.ofType(bus.ResultPartial) {
			spec = spec || p.Text == "bravo charlie"
		}
		if !spec {
			t.Errorf("no partial from the decode of the pause")
		}
	})
}

// TestStreamSpeculativeFinalEarlyWhenLate: the speculative final starts at Pad of
// silence while the stream's decodes are quick, and at the first silent Silero window
// (specEarly) once its latest decode says the final would not be done by the endpoint
// that way: the same final text, one decode of the final's window either way, its window
// ending specEarly after the speech instead of Pad.
func TestStreamSpeculativeFinalEarlyWhenLate(t *testing.T) {
	const want = "bravo charlie delta echo foxtrot golf"
	finalWindow := func(delay time.Duration) int {
		rig := newFakeRig(t, PoolConfig{}, &scriptedDecoder{Delay: delay})
		s, c := rig.open(bus.StreamOptions{InterimResults: true})
		pos := rig.feed(s, c, speech(1, 2, 3, 4, 5, 6), 0, 0) // longer than a decode's 1 s minimum window
		rig.feed(s, c, silence(1000), pos, 0)
		if f := c.ofType(bus.ResultFinal); len(f) != 1 || f[0].Text != want {
			t.Fatalf("decodes taking %v: finals %+v, want one: %q", delay, f, want)
		}
		rig.dec.mu.Lock()
		defer rig.dec.mu.Unlock()
		return len(rig.dec.reqs[len(rig.dec.reqs)-1].Samples) // the final's decode: the last
	}
	quick := finalWindow(0)
	// Half a second a decode of a window of a second or more: the final's, longer, would
	// take more than the 400 ms left of the 600 ms endpoint after Pad.
	slow := finalWindow(500 * time.Millisecond)
	if want := int(200*bus.SamplesPerMs - specEarly); quick-slow != want {
		t.Errorf("final windows %d samples with quick decodes, %d with slow ones: want the slow one %d shorter (ending %d ms after the speech, not 200)",
			quick, slow, want, specEarly/bus.SamplesPerMs)
	}
}

// TestStreamTrimsLongUtteranceWindow: a 6.6 s utterance (22 words without an endpoint
// pause). Once words are committed, decodes stop starting at the utterance's start
// (retrim): later partials and the final decode a shorter window with the committed words
// before it in the prompt, and the final still holds every word once, in order.
func TestStreamTrimsLongUtteranceWindow(t *testing.T) {
	rig := newFakeRig(t, PoolConfig{}, nil)
	s, c := rig.open(bus.StreamOptions{InterimResults: true})
	ks, want := trimTestWords(t)
	pos := rig.feed(s, c, silence(300), 0, 0)
	pos = rig.feed(s, c, speech(ks...), pos, 0)
	rig.feed(s, c, silence(1500), pos, 0)

	rs := c.results()
	checkPartials(t, rs)
	finals := c.ofType(bus.ResultFinal)
	if len(finals) != 1 || finals[0].Text != strings.Join(want, " ") {
		t.Fatalf("finals %+v, want one: %q", finals, strings.Join(want, " "))
	}
	checkFinalWindow(t, rig, ks, false)
}

// checkFinalWindow checks the decodes of the utterance of words ks that rig streamed: the
// partials' windows were trimmed (at least 5 decodes with committed words in their
// prompt), and the final's, the last, covered the whole utterance without a prompt
// (whole) or a trimmed window at least 2 s shorter with committed words in its prompt.
func checkFinalWindow(t *testing.T, rig *fakeRig, ks []int, whole bool) {
	t.Helper()
	rig.dec.mu.Lock()
	defer rig.dec.mu.Unlock()
	full := len(speech(ks...)) + 2*200*bus.SamplesPerMs // the whole utterance with its pads
	last := rig.dec.reqs[len(rig.dec.reqs)-1]
	wholeDecode := len(last.PromptTokens) == 0 && len(last.Samples) >= full-bus.SampleRate/2
	trimmedDecode := len(last.PromptTokens) > 0 && len(last.Samples) < full-2*bus.SampleRate
	if whole && !wholeDecode || !whole && !trimmedDecode {
		t.Errorf("final decode: %.2f s (whole utterance %.2f s), %d prompt tokens: want the whole utterance %v "+
			"(else a trimmed window, 2 s shorter, after committed words)",
			float64(len(last.Samples))/bus.SampleRate, float64(full)/bus.SampleRate, len(last.PromptTokens), whole)
	}
	trimmed := 0
	for _, q := range rig.dec.reqs {
		if len(q.PromptTokens) > 0 {
			trimmed++
		}
	}
	if trimmed < 5 {
		t.Errorf("%d of %d decodes trimmed", trimmed, len(rig.dec.reqs))
	}
}

// trimTestWords are 22 fake words (6.6 s) that the guards take for speech.
func trimTestWords(t *testing.T) (ks []int, want []string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(4, 2))
	for range 22 {
		k := rng.IntN(len(fakeVocab))
		ks = append(ks, k)
		want = append(want, fakeVocab[k])
	}
	if text := strings.Join(want, " "); loopStart(normWords(want)) >= 0 || compressionRatio(text) > maxCompression {
		t.Fatalf("test words %q look like a decode loop to the guard", want)
	}
	return ks, want
}

// TestStreamTrimmedFinalThatDoesNotAlign: every decode of a trimmed window comes back as
// a word that matches none of the committed ones (whisper decoding the overlap
// differently). The final cannot be joined to the committed words, so it is decoded
// again over the whole utterance: every word arrives once, none is lost.
func TestStreamTrimmedFinalThatDoesNotAlign(t *testing.T) {
	c := trimmedFinalDecodedWhole(t, &scriptedDecoder{Prompted: func(string) string { return "zulu" }})
	checkPartials(t, c.results())
}

// trimmedFinalDecodedWhole streams the trimTestWords utterance through dec and checks
// that its one final holds every word once, from a last decode of the whole utterance
// (no prompt: not a trimmed window).
func trimmedFinalDecodedWhole(t *testing.T, dec *scriptedDecoder) *collector {
	t.Helper()
	rig := newFakeRig(t, PoolConfig{}, dec)
	s, c := rig.open(bus.StreamOptions{InterimResults: true})
	ks, want := trimTestWords(t)
	pos := rig.feed(s, c, silence(300), 0, 0)
	pos = rig.feed(s, c, speech(ks...), pos, 0)
	rig.feed(s, c, silence(1500), pos, 0)
	finals := c.ofType(bus.ResultFinal)
	if len(finals) != 1 || finals[0].Text != strings.Join(want, " ") {
		t.Fatalf("finals %+v, want one: %q", finals, strings.Join(want, " "))
	}
	rig.dec.mu.Lock()
	defer rig.dec.mu.Unlock()
	if last := rig.dec.reqs[len(rig.dec.reqs)-1]; len(last.PromptTokens) != 0 {
		t.Errorf("last decode had %d prompt tokens: want the untrimmed whole utterance", len(last.PromptTokens))
	}
	return c
}

// TestStreamTrimmedFinalThatEndsEarly: decodes of a trimmed window stop 1.5 s of words
// before the window's end (whisper ending a decode early: on a Mandarin clip it wrote the first of
// two sentences and nothing of the second). Joined to the committed words such a final
// would lose the rest of the utterance; its last word ends long before the speech, so
// it is decoded again over the whole utterance: every word arrives once, none is lost.
func TestStreamTrimmedFinalThatEndsEarly(t *testing.T) {
	trimmedFinalDecodedWhole(t, &scriptedDecoder{Timed: true, Prompted: func(text string) string {
		w := strings.Fields(text)
		return strings.Join(w[:max(0, len(w)-5)], " ") // 1.5 s of words left out
	}})
}

// TestStreamWholeFinalBesideEnglish: under language=zh a decode of a window that ends
// mid-utterance writes the utterance's first three words as others (whisper forced to zh
// translating an English opening: "他需要去找…" for "He must be home now…"), and the
// partials commit them. The final decodes the whole utterance, not the partials'
// trimmed window with their commits in its prompt, and is that decode's words: the
// opening comes back. The partials' windows are still trimmed; in English the final
// decodes the trimmed window too (TestStreamTrimsLongUtteranceWindow).
func TestStreamWholeFinalBesideEnglish(t *testing.T) {
	ks, want := trimTestWords(t)
	translated := func(text string) Hypothesis {
		w := strings.Fields(text)
		if len(w) > 3 && w[0] == want[0] && w[1] == want[1] && len(w) < len(want) {
			w = append([]string{"tango", "uniform", "victor"}, w[3:]...)
		}
		return Hypothesis{Text: strings.Join(w, " "), AvgLogprob: -0.1, NoSpeechProb: 0.01, Tokens: []Token{{ID: 1}}}
	}
	rig := newFakeRig(t, PoolConfig{}, &scriptedDecoder{Override: translated})
	s, c := rig.open(bus.StreamOptions{InterimResults: true, Language: "zh"})
	pos := rig.feed(s, c, silence(300), 0, 0)
	pos = rig.feed(s, c, speech(ks...), pos, 0)
	rig.feed(s, c, silence(1500), pos, 0)
	committed := false
	for _, p := range c.ofType(bus.ResultPartial) {
		committed = committed || strings.HasPrefix(p.Text, "tango uniform victor") && p.StableWords >= 3
	}
	if !committed {
		t.Fatalf("no partial committed the stand-in's translated opening: the test does not reach the case (%+v)", c.ofType(bus.ResultPartial))
	}
	finals := c.ofType(bus.ResultFinal)
	if len(finals) != 1 || finals[0].Text != strings.Join(want, " ") {
		t.Fatalf("finals %+v, want one: %q", finals, strings.Join(want, " "))
	}
	checkFinalWindow(t, rig, ks, true)
}

// TestStreamEarlyFirstPartial: an utterance's first partial is decoded while the VAD
// still waits to confirm the speech (earlyDue, at 160 ms of candidate speech) and is
// shown at the confirmation (250 ms), not a step (300 ms) plus a decode after it.
func TestStreamEarlyFirstPartial(t *testing.T) {
	rig := newFakeRig(t, PoolConfig{}, earlyGuesser())
	s, c := rig.open(bus.StreamOptions{InterimResults: true, VADEvents: true})
	pos := rig.feed(s, c, silence(500), 0, 0)
	rig.feed(s, c, cat(speech(0, 1, 2, 3), silence(1500)), pos, 0)

	rs := c.results()
	checkPartials(t, rs)
	started, first := -1, -1
	for i, r := range rs {
		if r.Type == bus.ResultSpeechStarted && started < 0 {
			started = i
		}
		if r.Type == bus.ResultPartial && first < 0 {
			first = i
		}
	}
	if started < 0 || first < 0 || first < started {
		t.Fatalf("results %+v: want speech_started, then a partial", rs)
	}
	utt := uint64(rs[first].Start * bus.SampleRate)
	// Confirmed at minSpeech (250 ms) of speech, within one VAD window and one chunk.
	if at := c.at[first]; at < utt+minSpeechMs*bus.SamplesPerMs || at > utt+(minSpeechMs+32+20)*bus.SamplesPerMs {
		t.Errorf("first partial %q shown after %.3f s of speech, want at the VAD's confirmation (%.3f s)",
			rs[first].Text, sec(at-utt), float64(minSpeechMs)/1000)
	}
	if c.at[started] != c.at[first] {
		t.Errorf("speech_started at %.3f s, first partial at %.3f s: want both at the confirmation", sec(c.at[started]), sec(c.at[first]))
	}
	if d := rs[first].Duration; rs[first].Text != "al~early" || d > 0.25 || d < 0.15 {
		t.Errorf("first partial covers %.3f s, want the early window (0.16 s of speech)", d)
	}
	if f := c.ofType(bus.ResultFinal); len(f) != 1 || f[0].Text != "alpha bravo charlie delta" {
		t.Errorf("finals %+v", f)
	}
}

// TestStreamEarlyDecodeInFlight: an early decode still running when the VAD confirms
// the speech becomes the first partial when it completes, and no second decode of the
// utterance starts before it.
func TestStreamEarlyDecodeInFlight(t *testing.T) {
	dec := earlyGuesser()
	dec.Delay = 100 * time.Millisecond
	rig := newFakeRig(t, PoolConfig{}, dec)
	s, c := rig.open(bus.StreamOptions{InterimResults: true})
	pos := rig.feed(s, c, silence(500), 0, 0)
	w := speech(0)
	cut := 180 * bus.SamplesPerMs // the candidate has lasted 160 ms (it starts a VAD window early)
	pos = rig.write(s, c, w[:cut], pos, 0, false)
	for deadline := time.Now().Add(5 * time.Second); dec.inFlight.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no early decode started")
		}
	}
	rig.write(s, c, w[cut:], pos, 0, false) // confirmed while the early decode runs
	rig.waitIdle()
	ps := c.ofType(bus.ResultPartial)
	if len(ps) == 0 || ps[0].Text != "al~early" {
		t.Fatalf("partials %+v, want the early decode's first", ps)
	}
	if d := ps[0].Duration; d > 0.25 {
		t.Errorf("first partial covers %.3f s, want the early window", d)
	}
	if dec.maxIn.Load() != 1 {
		t.Errorf("%d decodes at once", dec.maxIn.Load())
	}
}

// TestStreamEarlyDecodeOfNoiseShowsNothing: a 200 ms burst is long enough for an early
// decode but never confirmed as speech (minSpeech 250 ms): its text is not shown.
func TestStreamEarlyDecodeOfNoiseShowsNothing(t *testing.T) {
	rig := newFakeRig(t, PoolConfig{}, nil)
	s, c := rig.open(bus.StreamOptions{InterimResults: true, VADEvents: true, UtteranceEndMs: 1000})
	rig.dec.Override = earlyGuesser().Override
	burst := speech(3)[:200*bus.SamplesPerMs]
	rig.feed(s, c, cat(silence(500), burst, silence(2000)), 0, bus.FlagEnd)
	if rs := c.results(); len(rs) != 1 || rs[0].Type != bus.ResultClosed {
		t.Errorf("a 200 ms burst gave %+v, want only closed", rs)
	}
	if n := rig.dec.calls.Load(); n != 1 {
		t.Errorf("%d decodes, want the one early decode", n)
	}
}

// TestStreamNoEarlyDecodeWhenBusy: an early decode is queued only when no stream waits
// and a slot is free (scheduler.spare).
func TestStreamNoEarlyDecodeWhenBusy(t *testing.T) {
	s := newScheduler(1)
	if !s.spare() {
		t.Fatal("empty scheduler not spare")
	}
	st := &stream{}
	s.push(st, false, time.Time{}, time.Now())
	if s.spare() {
		t.Error("spare with a stream queued")
	}
	if s.next() != st || s.spare() {
		t.Error("spare with the only slot busy")
	}
	s.done(0)
	if !s.spare() {
		t.Error("not spare after done")
	}
	two := newScheduler(2)
	two.push(st, false, time.Time{}, time.Now())
	if two.next() != st || !two.spare() {
		t.Error("not spare with one of two slots busy")
	}
}

// earlyGuesser is the scripted decoder, except that a window in which it recognises no
// whole word (the fake drops a burst shorter than a word, which whisper would guess at)
// decodes as "al~early".
func earlyGuesser() *scriptedDecoder {
	return &scriptedDecoder{Override: func(rec string) Hypothesis {
		if rec == "" {
			rec = "al~early"
		}
		return Hypothesis{Text: rec, AvgLogprob: -0.1, NoSpeechProb: 0.01, Tokens: []Token{{ID: 1}}}
	}}
}
