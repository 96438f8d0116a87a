package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/ingest"
)

// TestHumanRefScoring: with a provenance.tsv beside the manifest the clips whose
// reference another model printed are marked, each stream knows where the others lie
// on its clock, and the finals there are scored apart; without one nothing is.
func TestHumanRefScoring(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	if err := ingest.WriteWAV16(&buf, 16000, make([]float32, 16000)); err != nil { // 1 s of silence
		t.Fatal(err)
	}
	wav := buf.Bytes()
	for _, id := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(dir, id+".wav"), wav, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	manifest := filepath.Join(dir, "manifest.tsv")
	if err := os.WriteFile(manifest, []byte("id\twav\tduration_s\treference\na\ta.wav\t1.0\t你好\nb\tb.wav\t1.0\t再见\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	clips, err := LoadClips(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if humanRefClips(clips) != 0 || newProgram(clips, 4*time.Second).humanRefs(0, 1, 4*time.Second) != nil {
		t.Fatal("no provenance.tsv, yet the clips are told apart")
	}
	prov := "id\treference_quality\na\thuman\nb\tmodel-output; doubtful\n"
	if err := os.WriteFile(filepath.Join(dir, "provenance.tsv"), []byte(prov), 0o644); err != nil {
		t.Fatal(err)
	}
	if clips, err = LoadClips(manifest); err != nil {
		t.Fatal(err)
	}
	if clips[0].ModelReference || !clips[1].ModelReference || humanRefClips(clips) != 1 {
		t.Fatalf("model references: a %v, b %v", clips[0].ModelReference, clips[1].ModelReference)
	}
	p := newProgram(clips, 4*time.Second)
	// Stream 1 of 2 sends b (0–2 s with its gap), then a (2–4 s).
	spans := p.humanRefs(1, 2, 4*time.Second)
	if len(spans) != 1 || spans[0] != (refSpan{from: 2, to: 4, ref: "你好"}) {
		t.Fatalf("human spans %+v", spans)
	}
	finals := []timedText{{0.1, 0.9, "在家"}, {2.1, 1.2, "你号"}}
	if errs, refs := scoreSpans("zh-CN", spans, finals); errs != 1 || refs != 2 {
		t.Fatalf("human-reference clips: %d errors / %d characters, want 1 / 2", errs, refs)
	}
}

// TestHumanRefMarkdown: bench.md gives the rate over the human-reference clips under
// the table, for each level, and nothing when the clips are not told apart.
func TestHumanRefMarkdown(t *testing.T) {
	half := 0.5
	r := &Report{Clips: 16, Language: "zh-CN", HumanRefClips: 9, FinalFrom: FinalFromSpeechEnd,
		Levels: []Level{{Streams: 1, WER: 0.2, WERHumanRef: &half}, {Streams: 2, WER: 0.2}}}
	var b strings.Builder
	WriteMarkdown(&b, r)
	if want := "CER over the 9 of 16 clips whose reference a person wrote (provenance.tsv beside the manifest; the others' references are another model's output): 1 streams 50.0%, 2 streams –."; !strings.Contains(b.String(), want) {
		t.Errorf("bench.md lacks %q:\n%s", want, b.String())
	}
	r.HumanRefClips = 0
	b.Reset()
	WriteMarkdown(&b, r)
	if strings.Contains(b.String(), "clips whose reference a person wrote") {
		t.Error("a human-reference line without provenance")
	}
}
