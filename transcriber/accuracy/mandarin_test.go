package accuracy_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/earshot-dev/earshot/internal/hanzi"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/wer"
	"github.com/earshot-dev/earshot/transcriber"
)

// whisperBase is the real multilingual whisper base (make model MODEL=base).
func whisperBase(t *testing.T) transcriber.Model {
	t.Helper()
	return loadWhisper(t, testdata.Model(t, "base"))
}

func mandarinManifest(tb testing.TB) []testdata.Item {
	tb.Helper()
	items, err := testdata.LoadManifest(filepath.Join(testdata.Require(tb), testdata.MandarinManifest))
	if err != nil {
		tb.Fatal(err)
	}
	return items
}

// mandarinProvenance is the Mandarin set's provenance.tsv: which references a person
// wrote and which another model printed.
func mandarinProvenance(tb testing.TB) testdata.Provenance {
	tb.Helper()
	p, ok, err := testdata.ProvenanceFor(filepath.Join(testdata.Require(tb), testdata.MandarinManifest))
	if err != nil || !ok {
		tb.Fatalf("speech-zh/%s: ok %v, %v", testdata.ProvenanceFile, ok, err)
	}
	return p
}

// TestOfflineMandarin transcribes the Mandarin dev set (zhSubset of its clips unless
// EARSHOT_DEVSET=full) with real whisper base asked for
// zh-CN and scores it by character error rate (internal/wer: punctuation dropped,
// Traditional read as Simplified, numerals spoken). The output is valid UTF-8 in
// Simplified characters. Beside the CER over all clips it gives the CER over the clips
// whose reference a person wrote (provenance.tsv): the others' references are another
// model's output, so their CER is agreement with that model. EARSHOT_ZH_REPORT writes a
// table of every clip.
func TestOfflineMandarin(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: the whole Mandarin set through base")
	}
	m := whisperBase(t)
	prov := mandarinProvenance(t)
	var corpus, human wer.Corpus
	var rows strings.Builder
	fmt.Fprintf(&rows, "| id | reference by | seconds | CER | errors/chars | hypothesis |\n|---|---|---:|---:|---:|---|\n")
	var audio, took float64
	for _, it := range testdata.Subset(t, mandarinManifest(t), zhSubset) {
		s := readWAV16k(t, it.WAV)
		start := time.Now()
		tr, err := transcriber.Transcribe(context.Background(), m, s, transcriber.OfflineOptions{Threads: 2, Language: "zh-CN"})
		if err != nil {
			t.Fatalf("%s: %v", it.ID, err)
		}
		took += time.Since(start).Seconds()
		audio += tr.Duration
		if !utf8.ValidString(tr.Text) || hanzi.ToSimplified(tr.Text) != tr.Text {
			t.Errorf("%s: %q is not valid Simplified text", it.ID, tr.Text)
		}
		c := corpus.AddZh(it.Reference, tr.Text)
		by := "model"
		if prov.HumanReference(it.ID) {
			human.AddZh(it.Reference, tr.Text)
			by = "person"
		}
		t.Logf("%-36s %-6s CER %5.1f%%  %s", it.ID, by, 100*c.Rate(), tr.Text)
		fmt.Fprintf(&rows, "| %s | %s | %.1f | %.1f%% | %d/%d | %s |\n", it.ID, by, tr.Duration, 100*c.Rate(), c.Errors(), c.Ref,
			strings.ReplaceAll(tr.Text, "|", "/"))
	}
	summary := fmt.Sprintf("base (ggml f16), whisper.cpp 1.9.1 CPU, greedy, 2 threads, language=zh-CN: %d clips, %.1f s of audio, "+
		"CER %.2f%% (%d errors / %d characters); on the %d clips whose reference a person wrote (provenance.tsv) "+
		"CER %.2f%% (%d / %d); decode %.1f s, real-time factor %.3f",
		corpus.Utterances, audio, 100*corpus.Rate(), corpus.Errors(), corpus.Ref,
		human.Utterances, 100*human.Rate(), human.Errors(), human.Ref, took, took/audio)
	writeReport(t, "EARSHOT_ZH_REPORT", "Offline CER, Mandarin dev set", summary, rows.String())
	if corpus.Rate() > 0.25 {
		t.Errorf("CER %.2f%% > 25%%", 100*corpus.Rate())
	}
}

// TestDetectLanguageDevSets: language=multi on the clips of the English and Mandarin dev
// sets (make test's subsets; every clip under EARSHOT_DEVSET=full), offline with whisper's
// detection over the clip, finds the clip's language on at least 95 % of them (the
// issue's target).
func TestDetectLanguageDevSets(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: every dev clip through base")
	}
	m := whisperBase(t)
	d, err := m.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	type clip struct {
		want string
		it   testdata.Item
	}
	var clips []clip
	for _, it := range testdata.Subset(t, speechManifest(t), enSubset) {
		clips = append(clips, clip{"en", it})
	}
	for _, it := range testdata.Subset(t, mandarinManifest(t), zhSubset) {
		clips = append(clips, clip{"zh", it})
	}
	right := 0
	for _, c := range clips {
		s := readWAV16k(t, c.it.WAV)
		h, err := d.Decode(context.Background(), transcriber.DecodeRequest{Samples: s, DetectLanguage: true, MaxTokens: 1,
			AudioCtx: transcriber.FinalAudioCtx(len(s))})
		if err != nil {
			t.Fatal(err)
		}
		if h.Language == c.want {
			right++
		} else {
			t.Logf("%s: detected %s (p %.2f), want %s", c.it.ID, h.Language, h.LanguageP, c.want)
		}
	}
	acc := float64(right) / float64(len(clips))
	t.Logf("language detection: %d of %d clips right (%.1f%%)", right, len(clips), 100*acc)
	if acc < 0.95 {
		t.Errorf("language detection right on %.1f%% of the dev clips, want ≥ 95%%", 100*acc)
	}
}

// TestDetectAmong: detection restricted to a list (detect_language=zh&detect_language=en)
// chooses only from the list, with the probability renormalised over it, and tells the
// English opening of the code-switching clip from its Mandarin rest.
func TestDetectAmong(t *testing.T) {
	m := whisperBase(t)
	d, err := m.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	byID := map[string]testdata.Item{}
	for _, it := range mandarinManifest(t) {
		byID[it.ID] = it
	}
	detect := func(s []float32, among ...string) transcriber.Hypothesis {
		t.Helper()
		h, err := d.Decode(context.Background(), transcriber.DecodeRequest{Samples: s, DetectLanguage: true, DetectAmong: among,
			MaxTokens: 1, AudioCtx: transcriber.FinalAudioCtx(len(s))})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	zh := readWAV16k(t, byID["funasr_asr_example_zh"].WAV)
	if h := detect(zh); h.Language != "zh" {
		t.Fatalf("unrestricted detection on a Mandarin clip: %s (p %.2f)", h.Language, h.LanguageP)
	}
	if h := detect(zh, "en", "fr"); h.Language != "en" && h.Language != "fr" || h.LanguageP <= 0 || h.LanguageP > 1 {
		t.Fatalf("detection among en,fr on a Mandarin clip: %s (p %.2f)", h.Language, h.LanguageP)
	}
	cs := readWAV16k(t, byID["funasr_csharp_example_3_codeswitch"].WAV)
	// "he must be home now for the light is on" is its first 2.5 s; the rest is Mandarin.
	if h := detect(cs[:40000], "zh", "en"); h.Language != "en" {
		t.Errorf("the English opening among zh,en: %s (p %.2f)", h.Language, h.LanguageP)
	}
	if h := detect(cs[56000:], "zh", "en"); h.Language != "zh" {
		t.Errorf("the Mandarin rest among zh,en: %s (p %.2f)", h.Language, h.LanguageP)
	}
}
