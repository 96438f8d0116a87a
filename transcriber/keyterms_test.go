package transcriber

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/wer"
)

// keytermClip is a recording with terms tiny.en tends to miss, and its reference.
type keytermClip struct {
	id, ref string
	terms   []string // the terms said in it
	pcm     []int16
}

// keytermSentences are spoken by espeak-ng (a formant synthesiser: robotic, but every
// word is said, and whisper has never heard these names); the MFA clips of the dev set
// add real, spontaneous speech of "Montreal Forced Aligner".
var keytermSentences = []struct {
	id, text string
	terms    []string
}{
	{"kt_siobhan", "Please ask Siobhan Nakamura to review the Kubernetes upgrade.", []string{"Siobhan Nakamura", "Kubernetes"}},
	{"kt_zyntrax", "Our new product is called Zyntrax and it ships on Friday.", []string{"Zyntrax"}},
	{"kt_oluwaseun", "Transfer the money to the account of Oluwaseun Adeyemi today.", []string{"Oluwaseun Adeyemi"}},
	{"kt_bhattacharya", "The meeting with doctor Bhattacharya moved to Tuesday morning.", []string{"Bhattacharya"}},
	{"kt_hetzner", "We run Grafana and Prometheus on the Hetzner cluster.", []string{"Grafana", "Prometheus", "Hetzner"}},
	{"kt_xiomara", "Call Xiomara Quintanilla about the shipment to Tlaxcala.", []string{"Xiomara Quintanilla", "Tlaxcala"}},
	{"kt_earshot", "Earshot transcribes the call and Pipecat hands it to the agent.", []string{"Earshot", "Pipecat"}},
	{"kt_wojciech", "Wojciech Szczepański signed the contract for Łódź.", []string{"Wojciech Szczepański", "Łódź"}},
}

// keytermClips synthesises keytermSentences with espeak-ng (installed by scripts/deps.sh
// with DEPS_BROWSER=1, as CI does) and adds the MFA clips.
func keytermClips(t *testing.T) []keytermClip {
	t.Helper()
	espeak, err := exec.LookPath("espeak-ng")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("espeak-ng is required in CI (DEPS_BROWSER=1 scripts/deps.sh installs it)")
		}
		t.Skip("SKIPPING: espeak-ng not installed (DEPS_BROWSER=1 scripts/deps.sh)")
	}
	dir := t.TempDir()
	var out []keytermClip
	for _, s := range keytermSentences {
		path := filepath.Join(dir, s.id+".wav")
		if b, err := exec.Command(espeak, "-v", "en-us", "-s", "150", "-w", path, s.text).CombinedOutput(); err != nil {
			t.Fatalf("espeak-ng: %v: %s", err, b)
		}
		out = append(out, keytermClip{id: s.id, ref: s.text, terms: s.terms, pcm: readWAV(t, path)})
	}
	dirData := testdata.Require(t)
	items, err := testdata.LoadManifest(filepath.Join(dirData, testdata.SpeechManifest))
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if strings.Contains(strings.ToLower(it.Reference), "montreal") {
			out = append(out, keytermClip{id: it.ID, ref: it.Reference, terms: []string{"Montreal Forced Aligner"}, pcm: readWAV(t, it.WAV)})
		}
	}
	return out
}

// streamClip streams pcm (then a second of silence) through a fresh Pool on the real
// engine in simulated real time and returns the finals' text.
func streamClip(t *testing.T, model Model, newVAD func() (VAD, error), pcm []int16, terms []string) string {
	t.Helper()
	rig, s, c := simulatedSession(t, "tiny.en", model, newVAD, bus.StreamOptions{Keyterms: terms})
	defer func() { s.Close(); _ = rig.pool.Close() }() // free its decoder now, not at the end of the test
	x := append(append(make([]int16, 0, len(pcm)+bus.SampleRate), pcm...), make([]int16, bus.SampleRate)...)
	rig.feed(s, c, x, 0, bus.FlagEnd)
	deadline := time.Now().Add(30 * time.Second)
	var texts []string
	for {
		texts = texts[:0]
		closed := false
		for _, r := range c.results() {
			if r.Type == bus.ResultFinal && r.Text != "" {
				texts = append(texts, r.Text)
			}
			closed = closed || r.Type == bus.ResultClosed
		}
		if closed || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return strings.Join(texts, " ")
}

// hasTerm reports whether the normalised text holds the normalised term as whole words.
func hasTerm(text, term string) bool {
	return strings.Contains(" "+strings.Join(wer.Normalize(text), " ")+" ", " "+strings.Join(wer.Normalize(term), " ")+" ")
}

// allTerms is the session's term list in these tests: every term of every clip, as a
// voice agent would give its whole vocabulary to every call.
func allTerms() []string {
	var out []string
	for _, s := range keytermSentences {
		out = append(out, s.terms...)
	}
	return append(out, "Montreal Forced Aligner")
}

// TestKeytermRecall streams each clip through the live path twice, without and with the
// whole term list (keyterm=), and counts the terms heard. With the terms, recall must
// rise (measured: 0/17 → 10/17; prompt alone 4/17, logit bias alone 2/17) and the clips'
// WER must not.
func TestKeytermRecall(t *testing.T) {
	model, newVAD := realEngine(t)
	clips := keytermClips(t)
	terms := allTerms()
	var base, with, total int
	var cBase, cWith wer.Corpus
	for _, c := range clips {
		plain := streamClip(t, model, newVAD, c.pcm, nil)
		biased := streamClip(t, model, newVAD, c.pcm, terms)
		cBase.Add(c.ref, plain)
		cWith.Add(c.ref, biased)
		for _, term := range c.terms {
			total++
			if hasTerm(plain, term) {
				base++
			}
			if hasTerm(biased, term) {
				with++
			}
		}
		for _, term := range terms { // a term not said in the clip must not appear
			if !hasTerm(c.ref, term) && hasTerm(biased, term) && !hasTerm(plain, term) {
				t.Errorf("%s: term %q inserted: %q", c.id, term, biased)
			}
		}
		t.Logf("%-28s without: %q\n%-28s with:    %q", c.id, plain, "", biased)
	}
	t.Logf("key terms heard: %d/%d without the list, %d/%d with it; WER of these clips %.1f%% → %.1f%%",
		base, total, with, total, 100*cBase.WER(), 100*cWith.WER())
	if with <= base || with*2 < total {
		t.Errorf("key terms heard: %d/%d without, %d/%d with; want more with, and at least half", base, total, with, total)
	}
	if cWith.WER() > cBase.WER() {
		t.Errorf("WER of the key-term clips rose with the terms: %.1f%% → %.1f%%", 100*cBase.WER(), 100*cWith.WER())
	}
}

// TestKeytermNoInsertion: with the whole term list, silence, white noise and the dev
// set's other speech (none of which says a term) give no term, and the dev set's WER is
// not worse than without the list. make test streams keytermSubset of the clips
// (EARSHOT_DEVSET=full: all). The without-list arm is a second stream of every clip
// (three minutes on a 2-core AVX2 machine for the whole set), so the test compares with
// its measured WER, keytermPlainWER or keytermPlainWERSubset;
// EARSHOT_KEYTERM_BASELINE=1 streams it again.
func TestKeytermNoInsertion(t *testing.T) {
	model, newVAD := realEngine(t)
	terms := allTerms()
	rng := rand.New(rand.NewPCG(3, 4))
	noise := make([]int16, 20*bus.SampleRate)
	for i := range noise {
		noise[i] = int16((rng.Float64()*2 - 1) * 0.05 * 32767)
	}
	for name, pcm := range map[string][]int16{"silence": make([]int16, 20*bus.SampleRate), "white noise": noise} {
		if got := streamClip(t, model, newVAD, pcm, terms); got != "" {
			t.Errorf("%s with the terms gave %q", name, got)
		}
	}
	items, err := testdata.LoadManifest(filepath.Join(testdata.Require(t), testdata.SpeechManifest))
	if err != nil {
		t.Fatal(err)
	}
	baseline := os.Getenv("EARSHOT_KEYTERM_BASELINE") != ""
	var cBase, cWith wer.Corpus
	for _, it := range testdata.Subset(t, items, keytermSubset) {
		if strings.Contains(strings.ToLower(it.Reference), "montreal") {
			continue
		}
		pcm := readWAV(t, it.WAV)
		biased := streamClip(t, model, newVAD, pcm, terms)
		cWith.Add(it.Reference, biased)
		plain := "(not streamed)"
		if baseline {
			plain = streamClip(t, model, newVAD, pcm, nil)
			cBase.Add(it.Reference, plain)
		}
		for _, term := range terms {
			if hasTerm(biased, term) && !hasTerm(it.Reference, term) {
				t.Errorf("%s: term %q inserted: %q (without the terms: %q)", it.ID, term, biased, plain)
			}
		}
	}
	base := keytermPlainWERSubset
	if testdata.FullDevSets() {
		base = keytermPlainWER
	}
	if baseline {
		base = cBase.WER()
	}
	t.Logf("dev set without Montreal clips (%d words): WER %.2f%% without the terms (%s), %.2f%% with them",
		cWith.Ref, 100*base, map[bool]string{true: "streamed now", false: "measured, keytermPlainWER"}[baseline], 100*cWith.WER())
	if cWith.WER() > base+0.01 {
		t.Errorf("dev-set WER with the terms %.2f%% > %.2f%% without (+1 point allowed)", 100*cWith.WER(), 100*base)
	}
}

// keytermPlainWER is the dev set's WER (Montreal clips left out, 345 words) streamed
// without the terms by TestKeytermNoInsertion with EARSHOT_KEYTERM_BASELINE=1, tiny.en
// f16 (2026-12-05; 8.70 % with the terms in the same run). Measure it again when the
// model, the decode parameters or the dev set change.
const keytermPlainWER = 0.0928

// keytermSubset is how many of the 30 clips make test streams (Montreal clips among
// them are then left out), and keytermPlainWERSubset their WER without the terms,
// measured as keytermPlainWER was (EARSHOT_KEYTERM_BASELINE=1, 2026-12-05).
const (
	keytermSubset         = 10
	keytermPlainWERSubset = 0.1642
)
