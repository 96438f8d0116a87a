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

	"github.com/earshot-dev/earshot/ingest"
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

// The Configure the SDK client sends a second into the audio, and what ConfigureSuccess
// must then hold: the thresholds sent, and the eager_eot_threshold the stream opened with.
// eot_threshold 1 stops the model from ending turns (it still announces them with
// EagerEndOfTurn at eager_eot_threshold); the timeout ends them.
const (
	fluxSDKEager            = 0.4
	fluxSDKConfigureAfterMs = 1000
	fluxSDKConfigureEOT     = 1.0
	fluxSDKConfigureTimeout = 1200
	// An EagerEndOfTurn is an early notice: with the model kept from ending turns, it
	// comes in the pause (about a second before the timeout's EndOfTurn), not with it.
	fluxSDKEagerLead = 0.3
)

// TestFluxOfficialSDK: Deepgram's official Python SDK (deepgram-sdk, unmodified, its
// listen.v2 Flux client pointed at the server with its documented environment option)
// streams JFK, two seconds of silence and JFK's first two seconds again in real time to
// a real `earshot serve`'s /v2/listen with an Earshot API key, model flux-general-en
// and eager end of turn on (eager_eot_threshold 0.4). Through the SDK's own methods it
// sends a Configure a second in (send_configure: eot_threshold 1, eot_timeout_ms 1200),
// ForceEndTurn right after the last audio, mid-word (send_force_end_turn), and then
// CloseStream. The SDK reports no error and types every message (each one checked
// against the SDK's own model); Connected comes first; ConfigureSuccess comes back
// once, promptly, with the new thresholds and the unchanged eager one, and they hold:
// JFK's turns end by the timeout, not the model; the TurnInfo events follow Flux's
// state machine, and at least one of JFK's turns is announced early, in its pause, by an
// EagerEndOfTurn at eager_eot_threshold or above whose transcript its EndOfTurn repeats;
// ForceEndTurn
// ends the open turn promptly (trigger manual) with the words spoken so far; JFK's
// EndOfTurn transcripts are his sentence; the tenant is billed the audio sent.
func TestFluxOfficialSDK(t *testing.T) {
	testdata.Model(t, "tiny.en")
	python, site := fluxSDK(t)
	srv := testutil.StartServe(t)
	store, key := tenantWithKey(t, srv, "acme", "team", nil)

	path, ref, samples := jfkSilenceThenCut(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join(fluxSDKDir, "flux_client.py"), "--url", srv.URL,
		"--key", key, "--wav", path, "--model", "flux-general-en", "--chunk-ms", "50",
		"--eager-eot-threshold", fmt.Sprint(fluxSDKEager), "--eot-timeout-ms", "1500",
		"--configure-after-ms", fmt.Sprint(fluxSDKConfigureAfterMs),
		"--configure-eot-threshold", fmt.Sprint(fluxSDKConfigureEOT),
		"--configure-eot-timeout-ms", fmt.Sprint(fluxSDKConfigureTimeout),
		"--force-end-turn", "--force-timeout", "5")
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
		Sent       string          `json:"sent"`
		Control    json.RawMessage `json:"control"`
	}
	var msgs []line
	var errs []string
	var done *line
	sentAt := map[string]float64{} // control message type: when the client sent it
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
		case l.Sent != "":
			if _, dup := sentAt[l.Sent]; dup {
				t.Fatalf("client sent %s twice", l.Sent)
			}
			sentAt[l.Sent] = l.T
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
	configureAt, ok1 := sentAt["Configure"]
	forceAt, ok2 := sentAt["ForceEndTurn"]
	if !ok1 || !ok2 {
		t.Fatalf("the client did not send Configure and ForceEndTurn: %v\n%s", sentAt, report())
	}

	// Connected first, then TurnInfo and one ConfigureSuccess; sequence_id counts every
	// message from 0.
	type thresholds struct {
		EagerEOTThreshold *float64 `json:"eager_eot_threshold"`
		EOTThreshold      float64  `json:"eot_threshold"`
		EOTTimeoutMs      int      `json:"eot_timeout_ms"`
	}
	type turnEnd struct {
		t          float64
		transcript string
		trigger    string
		eager      bool    // an EagerEndOfTurn with this transcript announced it, not taken back
		eagerConf  float64 // that EagerEndOfTurn's end_of_turn_confidence
		lead       float64 // seconds from that EagerEndOfTurn to the EndOfTurn
		updates    int     // Updates between them
	}
	var reqID string
	var configured []float64 // when each ConfigureSuccess came
	var turnEnds []turnEnd
	var pastForce, turnOpenAtForce bool
	// The current turn's EagerEndOfTurn not taken back: transcript, confidence, when,
	// and Updates since.
	eager, eagerConf, eagerAt, eagerUpdates := "", 0.0, 0.0, 0
	turns := newTurnMachine()
	events := map[string]int{}
	for i, l := range msgs {
		var m struct {
			Type                string      `json:"type"`
			RequestID           string      `json:"request_id"`
			SequenceID          int         `json:"sequence_id"`
			Event               string      `json:"event"`
			TurnIndex           int         `json:"turn_index"`
			Transcript          string      `json:"transcript"`
			Trigger             *string     `json:"trigger"`
			AudioWindowStart    float64     `json:"audio_window_start"`
			AudioWindowEnd      float64     `json:"audio_window_end"`
			EndOfTurnConfidence float64     `json:"end_of_turn_confidence"`
			Thresholds          *thresholds `json:"thresholds"`
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
		if m.RequestID != reqID {
			t.Fatalf("message %d: %s for request %q, not %q: %s", i, l.SDKType, m.RequestID, reqID, l.Msg)
		}
		if l.SDKType == "ListenV2ConfigureSuccess" {
			th := m.Thresholds
			if th == nil || th.EagerEOTThreshold == nil || *th.EagerEOTThreshold != fluxSDKEager ||
				th.EOTThreshold != fluxSDKConfigureEOT || th.EOTTimeoutMs != fluxSDKConfigureTimeout {
				t.Fatalf("message %d: ConfigureSuccess does not hold eager_eot_threshold %v, eot_threshold %v, eot_timeout_ms %d: %s",
					i, fluxSDKEager, fluxSDKConfigureEOT, fluxSDKConfigureTimeout, l.Msg)
			}
			configured = append(configured, l.T)
			continue
		}
		if l.SDKType != "ListenV2TurnInfo" {
			t.Fatalf("message %d: %s: %s", i, l.SDKType, l.Msg)
		}
		if m.AudioWindowEnd < m.AudioWindowStart || m.EndOfTurnConfidence < 0 || m.EndOfTurnConfidence > 1 {
			t.Fatalf("message %d: audio window or end-of-turn confidence wrong: %s", i, l.Msg)
		}
		if (m.Trigger != nil) != (m.Event == "EndOfTurn") {
			t.Fatalf("message %d: trigger is on every EndOfTurn and only there: %s", i, l.Msg)
		}
		events[m.Event]++
		if l.T > forceAt && !pastForce {
			// The first TurnInfo after ForceEndTurn: was a turn open when it went out?
			pastForce, turnOpenAtForce = true, turns.state != "initial"
		}
		turns.step(t, i, m.Event, m.TurnIndex, m.Transcript, l.Msg)
		switch m.Event {
		case "EagerEndOfTurn":
			eager, eagerConf, eagerAt, eagerUpdates = m.Transcript, m.EndOfTurnConfidence, l.T, 0
		case "Update":
			eagerUpdates++
		case "TurnResumed":
			eager = ""
		case "EndOfTurn":
			turnEnds = append(turnEnds, turnEnd{t: l.T, transcript: m.Transcript, trigger: *m.Trigger,
				eager: eager != "" && eager == m.Transcript, eagerConf: eagerConf, lead: l.T - eagerAt,
				updates: eagerUpdates})
			eager = ""
		}
	}
	turns.closed(t, report())

	// Configure: one ConfigureSuccess, promptly.
	if len(configured) != 1 {
		t.Fatalf("%d ConfigureSuccess messages for one Configure\n%s", len(configured), report())
	}
	if d := configured[0] - configureAt; d < 0 || d > 2 {
		t.Fatalf("ConfigureSuccess came %.3fs after Configure\n%s", d, report())
	}

	// ForceEndTurn, sent mid-word in the open turn: an EndOfTurn (manual) within two
	// seconds, the last one, holding the words spoken so far.
	if !turnOpenAtForce || len(turnEnds) < 2 {
		t.Fatalf("no turn was open at ForceEndTurn (%.3fs)\n%s", forceAt, report())
	}
	forced := turnEnds[len(turnEnds)-1]
	if d := forced.t - forceAt; d < 0 || d > 2 || forced.trigger != "manual" ||
		!strings.Contains(strings.ToLower(forced.transcript), "fellow") {
		t.Fatalf("after ForceEndTurn at %.3fs: EndOfTurn %q (trigger %s) %.3fs later; want trigger manual within 2s, with \"fellow\"\n%s",
			forceAt, forced.transcript, forced.trigger, d, report())
	}

	// JFK's turns, all after the Configure: his sentence; ended by the timeout, as the
	// new eot_threshold wants; at least one announced early (fluxSDKEagerLead) by an
	// EagerEndOfTurn at eager_eot_threshold or above with the same transcript.
	var ends, eagerEnds []string
	for _, e := range turnEnds[:len(turnEnds)-1] {
		ends = append(ends, e.transcript)
		if e.trigger != "timeout" {
			t.Fatalf("JFK's turn %q ended by %s after Configure set eot_threshold %v (want timeout)\n%s",
				e.transcript, e.trigger, fluxSDKConfigureEOT, report())
		}
		if e.eager && e.eagerConf >= fluxSDKEager && e.lead >= fluxSDKEagerLead {
			eagerEnds = append(eagerEnds, fmt.Sprintf("%.0f ms/%d Updates before EndOfTurn, confidence %.2f",
				1000*e.lead, e.updates, e.eagerConf))
		}
	}
	got := strings.Join(ends, " ")
	w, _, _ := wer.WER(ref, got)
	if w > 0.10 {
		t.Fatalf("EndOfTurn transcripts %q: WER %.1f%% against %q", ends, 100*w, ref)
	}
	if len(eagerEnds) == 0 {
		t.Fatalf("no EndOfTurn of JFK's turns %q came %vs or more after an EagerEndOfTurn with its transcript and confidence %v or more\n%s",
			ends, fluxSDKEagerLead, fluxSDKEager, report())
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
	t.Logf("deepgram-sdk %s: %d messages %v in %v; turns %q (WER %.1f%%; EagerEndOfTurns %q); "+
		"ConfigureSuccess %.0f ms after Configure; forced EndOfTurn %q %.0f ms after ForceEndTurn; billed %d ms",
		done.SDKVersion, len(msgs), events, elapsed.Round(time.Millisecond), ends, 100*w, eagerEnds,
		1000*(configured[0]-configureAt), forced.transcript, 1000*(forced.t-forceAt), sentMs)
}

// jfkSilenceThenCut writes JFK's sentence, two seconds of silence (a turn ends in
// them) and JFK's first two seconds again, cut in "Americans" (a turn is open at the
// end), as a 16 kHz mono WAV file in a temporary directory. It returns the file, JFK's
// reference transcript and the number of samples.
func jfkSilenceThenCut(t *testing.T) (path, reference string, samples int) {
	t.Helper()
	jfk, ref := manifestItem(t, jfkID)
	s := fileSamples(t, jfk)
	pcm := append(append(append([]float32(nil), s...), make([]float32, 2*16000)...), s[:2*16000]...)
	var wav bytes.Buffer
	if err := ingest.WriteWAV16(&wav, 16000, pcm); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "jfk-silence-cut.wav")
	if err := os.WriteFile(path, wav.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, ref, len(pcm)
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
