package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/testutil"
	"github.com/earshot-dev/earshot/internal/wer"
)

// fluxSDKDir holds the Flux client that uses Deepgram's official Python SDK and the
// SDK's pinned requirements.
const fluxSDKDir = "testdata/flux-py"

// fluxSDKVersion is the deepgram-sdk pinned in fluxSDKDir/requirements.txt.
const fluxSDKVersion = "7.17.0"

// TestFluxOfficialSDK: Deepgram's official Python SDK (deepgram-sdk, unmodified, its
// listen.v2 Flux client pointed at the server with its documented environment option)
// streams JFK and two seconds of silence in real time to a real `earshot serve`'s
// /v2/listen with an Earshot API key, model flux-general-en and eager end of turn on.
// The SDK reports no error and types every message (each one checked against the SDK's
// own model); Connected comes first; the TurnInfo events follow Flux's state machine;
// the EndOfTurn transcripts are JFK's sentence; the tenant is billed the audio sent.
func TestFluxOfficialSDK(t *testing.T) {
	testdata.Model(t, "tiny.en")
	python, site := fluxSDK(t)
	srv := testutil.StartServe(t)
	store, key := tenantWithKey(t, srv, "acme", "team", nil)

	path, ref, samples := jfkThenSilence(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join(fluxSDKDir, "flux_client.py"), "--url", srv.URL,
		"--key", key, "--wav", path, "--model", "flux-general-en", "--chunk-ms", "50",
		"--eager-eot-threshold", "0.5", "--eot-timeout-ms", "1500")
	cmd.Env = append(os.Environ(), "PYTHONPATH="+site, "PYTHONNOUSERSITE=1", "PYTHONDONTWRITEBYTECODE=1",
		"PYTHONWARNINGS=ignore::DeprecationWarning")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	elapsed := time.Since(start)

	type line struct {
		T          float64         `json:"t"`
		SDKType    string          `json:"sdk_type"`
		Msg        json.RawMessage `json:"msg"`
		Error      string          `json:"error"`
		Done       bool            `json:"done"`
		SDKVersion string          `json:"sdk_version"`
		SentBytes  int64           `json:"sent_bytes"`
	}
	var msgs []line
	var errs []string
	var done *line
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("client printed a line that is not JSON: %q", sc.Text())
		}
		switch {
		case l.Error != "":
			errs = append(errs, l.Error)
		case l.Done:
			done = &l
		case l.Msg != nil:
			msgs = append(msgs, l)
		}
	}
	report := func() string {
		return fmt.Sprintf("client stdout:\n%s\nclient stderr:\n%s", stdout.String(), stderr.String())
	}
	if len(errs) > 0 || runErr != nil || done == nil {
		t.Fatalf("the SDK client failed (%v): errors %q\n%s", runErr, errs, report())
	}
	if done.SDKVersion != fluxSDKVersion {
		t.Fatalf("deepgram-sdk %s ran, want %s", done.SDKVersion, fluxSDKVersion)
	}
	if want := int64(samples * 2); done.SentBytes != want {
		t.Fatalf("client sent %d bytes of %d", done.SentBytes, want)
	}

	// Connected first, then TurnInfo only; sequence_id counts every message from 0.
	var reqID string
	turns := newTurnMachine()
	events := map[string]int{}
	for i, l := range msgs {
		var m struct {
			Type                string  `json:"type"`
			RequestID           string  `json:"request_id"`
			SequenceID          int     `json:"sequence_id"`
			Event               string  `json:"event"`
			TurnIndex           int     `json:"turn_index"`
			Transcript          string  `json:"transcript"`
			Trigger             *string `json:"trigger"`
			AudioWindowStart    float64 `json:"audio_window_start"`
			AudioWindowEnd      float64 `json:"audio_window_end"`
			EndOfTurnConfidence float64 `json:"end_of_turn_confidence"`
		}
		if err := json.Unmarshal(l.Msg, &m); err != nil {
			t.Fatal(err)
		}
		if m.SequenceID != i {
			t.Fatalf("message %d: sequence_id %d: %s", i, m.SequenceID, l.Msg)
		}
		if i == 0 {
			if l.SDKType != "ListenV2Connected" || m.RequestID == "" {
				t.Fatalf("first message is %s, not Connected: %s", l.SDKType, l.Msg)
			}
			reqID = m.RequestID
			continue
		}
		if l.SDKType != "ListenV2TurnInfo" || m.RequestID != reqID {
			t.Fatalf("message %d: %s (request %q): %s", i, l.SDKType, m.RequestID, l.Msg)
		}
		if m.AudioWindowEnd < m.AudioWindowStart || m.EndOfTurnConfidence < 0 || m.EndOfTurnConfidence > 1 {
			t.Fatalf("message %d: audio window or end-of-turn confidence wrong: %s", i, l.Msg)
		}
		if (m.Trigger != nil) != (m.Event == "EndOfTurn") {
			t.Fatalf("message %d: trigger is on every EndOfTurn and only there: %s", i, l.Msg)
		}
		events[m.Event]++
		turns.step(t, i, m.Event, m.TurnIndex, m.Transcript, l.Msg)
	}
	turns.closed(t, report())
	ends := turns.ends
	got := strings.Join(ends, " ")
	w, _, _ := wer.WER(ref, got)
	if w > 0.10 {
		t.Fatalf("EndOfTurn transcripts %q: WER %.1f%% against %q", ends, 100*w, ref)
	}

	// Billing: the stream's session and the tenant's month hold the audio sent, to the ms.
	sentMs := done.SentBytes / 32
	testutil.Eventually(t, 20*time.Second, "the /v2 stream's audio billed", func() bool {
		s, err := store.SessionMs(ctx, "acme", bus.SessionID(reqID))
		if err != nil || s != sentMs {
			return false
		}
		m, err := store.MonthUsage(ctx, "acme", time.Now().UTC().Format("2006-01"))
		var total int64
		for _, ms := range m {
			total += ms
		}
		return err == nil && total == sentMs
	})
	t.Logf("deepgram-sdk %s: %d messages %v in %v; turns %q (WER %.1f%%); billed %d ms",
		done.SDKVersion, len(msgs), events, elapsed.Round(time.Millisecond), ends, 100*w, sentMs)
}

// fluxSDK returns a python3 and a directory holding Deepgram's Python SDK as pinned in
// fluxSDKDir/requirements.txt, installed with pip on first use into the per-user cache
// (keyed by the requirements' hash, the Python version and the machine; PyPI must be reachable
// then). Without python3 (3.10 or later) or pip, or when the install fails, the test
// skips with a loud message, except under CI=true, where it fails (scripts/deps.sh
// installs python3 and pip).
func fluxSDK(t *testing.T) (python, site string) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: CI must provide it (scripts/deps.sh)", msg)
		}
		t.Skipf("SKIPPING: %s (scripts/deps.sh installs python3 and pip)", msg)
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		missing("python3 not found")
	}
	ver, err := exec.Command(python, "-c", "import platform, sys; print('%d.%d-%s' % (sys.version_info[:2] + (platform.machine(),))); assert sys.version_info >= (3, 10)").Output()
	if err != nil {
		missing("python3 3.10 or later is needed for deepgram-sdk (got %q)", strings.TrimSpace(string(ver)))
	}
	if out, err := exec.Command(python, "-m", "pip", "--version").CombinedOutput(); err != nil {
		missing("pip for %s not found: %v: %s", python, err, bytes.TrimSpace(out))
	}
	reqPath := filepath.Join(fluxSDKDir, "requirements.txt")
	req, err := os.ReadFile(reqPath)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(req)
	site = filepath.Join(cache, "earshot", "flux-py", hex.EncodeToString(sum[:6])+"-py"+strings.TrimSpace(string(ver)))
	if _, err := os.Stat(filepath.Join(site, ".installed")); err == nil {
		return python, site
	}
	if err := os.MkdirAll(filepath.Dir(site), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(site), ".install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	out, err := exec.Command(python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet",
		"--no-deps", "--only-binary=:all:", "--target", tmp, "-r", reqPath).CombinedOutput()
	if err != nil {
		missing("pip could not install deepgram-sdk from %s (is PyPI reachable?): %v\n%s", reqPath, err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".installed"), req, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, site); err != nil {
		// Another test process installed it first.
		if _, serr := os.Stat(filepath.Join(site, ".installed")); serr != nil {
			t.Fatalf("install %s: %v", site, err)
		}
	}
	t.Logf("installed deepgram-sdk %s into %s in %v", fluxSDKVersion, site, time.Since(start).Round(time.Millisecond))
	return python, site
}
