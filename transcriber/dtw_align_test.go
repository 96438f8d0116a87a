package transcriber

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/wer"
	"github.com/earshot-dev/earshot/transcriber/whispercpp"
)

// dtwWordEnds force-aligns each utterance's reference words to the audio and returns,
// per utterance ID, the stream second at which each reference word (wer.Normalize'd)
// ends. It uses whisper's own DTW token times (OpenAI's word-timestamp method): a
// separate tiny.en load with its alignment heads and flash attention off decodes the
// utterance (±0.3 s) offline with the full 30 s context. whisper.cpp's t_dtw is where the
// alignment path leaves a token, so a decoded word ends at its last token's time (checked
// on JFK: "Americans", before a pause, ends at 3.26 s, where Silero's speech ends at
// 3.23 s). DTW sometimes gives part of a pause to the word before it ("you" at 9.02 s,
// speech ending at 8.64 s), which would make that word look heard later than it was; so
// a word ends no later than the Silero speech run (sm.runEnd) it starts in, which
// starts where the word before it ended. The decoded words are aligned to the reference
// words (fewest edits); a reference word with no decoded counterpart ends where the word
// before it ends.
func dtwWordEnds(t *testing.T, pcm []int16, lf testdata.Longform, sm speechMap) map[string][]float64 {
	t.Helper()
	cp := whispercpp.DefaultContextParams()
	cp.FlashAttn, cp.DTW = false, "tiny.en"
	m, err := whispercpp.Load(testdata.Model(t, "tiny.en"), cp)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	st, err := m.NewState()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := whispercpp.DefaultParams()
	p.Threads, p.TemperatureInc, p.TokenTimestamps = 2, 0, true // DTW runs on calls with token timestamps (patch 0003)
	out := map[string][]float64{}
	for _, u := range lf.Utterances {
		a := max(0, int((u.Start.Seconds()-0.3)*bus.SampleRate))
		b := min(len(pcm), int((u.End.Seconds()+0.3)*bus.SampleRate))
		x := make([]float32, b-a)
		for i, s := range pcm[a:b] {
			x[i] = float32(s) / 32768
		}
		r, err := st.Full(context.Background(), p, x)
		if err != nil {
			t.Fatal(err)
		}
		off := float64(a) / bus.SampleRate
		var hyp []string
		var hypEnd []float64
		word, end, prev := "", 0.0, off // prev: where the word before ended (by DTW)
		flush := func() {
			if word == "" {
				return
			}
			e := max(min(end, sm.runEnd(prev)), prev)
			for _, n := range wer.Normalize(word) {
				hyp, hypEnd = append(hyp, n), append(hypEnd, e)
			}
			if os.Getenv("EARSHOT_STREAM_DEBUG") != "" {
				t.Logf("DTW %s word %q ends %.2f by DTW, %.2f within its speech run", u.ID, word, end, e)
			}
			word, prev = "", end
		}
		for _, s := range r.Segments {
			for _, tk := range s.Tokens {
				if tk.Special || tk.TDTW < 0 {
					continue
				}
				if strings.HasPrefix(tk.Text, " ") {
					flush()
				}
				word, end = word+tk.Text, off+tk.TDTW
			}
		}
		flush()
		ref := wer.Normalize(u.Reference)
		ends := make([]float64, len(ref))
		last := u.Start.Seconds()
		for k, i := range alignWords(ref, hyp) {
			if i >= 0 {
				last = max(last, hypEnd[i])
			}
			ends[k] = last
		}
		t.Logf("DTW %s: %q → %s", u.ID, strings.TrimSpace(r.Text()), fmtEnds(ref, ends))
		out[u.ID] = ends
	}
	return out
}

func fmtEnds(ref []string, ends []float64) string {
	var b strings.Builder
	for k, w := range ref {
		fmt.Fprintf(&b, " %s@%.2f", w, ends[k])
	}
	return strings.TrimSpace(b.String())
}

// alignWords aligns hyp to ref at the fewest word edits (Levenshtein) and returns, for
// each reference word, the index of the hypothesis word matched or substituted for it,
// or -1 where the reference word was deleted.
func alignWords(ref, hyp []string) []int {
	n, m := len(ref), len(hyp)
	d := make([][]int, n+1)
	for j := range d {
		d[j] = make([]int, m+1)
		d[j][0] = j
	}
	for i := 0; i <= m; i++ {
		d[0][i] = i
	}
	for j := 1; j <= n; j++ {
		for i := 1; i <= m; i++ {
			sub := d[j-1][i-1]
			if ref[j-1] != hyp[i-1] {
				sub++
			}
			d[j][i] = min(sub, d[j-1][i]+1, d[j][i-1]+1)
		}
	}
	out := make([]int, n)
	for j, i := n, m; j > 0; {
		switch {
		case i > 0 && d[j][i] == d[j-1][i-1]+boolInt(ref[j-1] != hyp[i-1]):
			out[j-1] = i - 1
			j, i = j-1, i-1
		case d[j][i] == d[j-1][i]+1:
			out[j-1] = -1
			j--
		default:
			i--
		}
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestAlignWords(t *testing.T) {
	for _, tc := range []struct {
		ref, hyp string
		want     []int
	}{
		{"a b c", "a b c", []int{0, 1, 2}},
		{"and mr john", "mr john", []int{-1, 0, 1}},              // first word dropped
		{"a b c", "a x b c", []int{0, 2, 3}},                     // insertion skipped
		{"a b c", "a y c", []int{0, 1, 2}},                       // substitution kept
		{"a b", "", []int{-1, -1}},                               // nothing decoded
		{"ask not what", "ask not ask not what", []int{2, 3, 4}}, // repeated phrase: the later copy
	} {
		got := alignWords(strings.Fields(tc.ref), strings.Fields(tc.hyp))
		if len(got) != len(tc.want) {
			t.Fatalf("%q vs %q: %v", tc.ref, tc.hyp, got)
		}
		for k := range got {
			if got[k] != tc.want[k] {
				t.Errorf("%q vs %q: %v, want %v", tc.ref, tc.hyp, got, tc.want)
				break
			}
		}
	}
}
