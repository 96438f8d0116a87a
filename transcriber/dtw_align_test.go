package transcriber

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/internal/testdata"
	"github.com/earshot-dev/earshot/internal/wer"
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
	aligned := alignOffline(t, pcm, lf, "tiny.en")
	out := map[string][]float64{}
	for _, u := range lf.Utterances {
		au := aligned[u.ID]
		var hyp []string
		var hypEnd []float64
		word, end, prev := "", 0.0, max(0, u.Start.Seconds()-0.3) // prev: where the word before ended (by DTW)
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
		for _, tk := range au.toks {
			if strings.HasPrefix(tk.Text, " ") {
				flush()
			}
			word, end = word+tk.Text, tk.End
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
		t.Logf("DTW %s: %q → %s", u.ID, au.text, fmtEnds(ref, ends))
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
