package whispercpp_test

import (
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
	pcm := loadWAV(t, "whispercpp_jfk.wav")
	p := params() // 2 threads
	run := func(cap, want int) string {
		t.Helper()
		whispercpp.SetThreadCap(cap)
		text := decode(t, st, p, pcm).Text()
		if n := whispercpp.LastThreads(); n != want {
			t.Errorf("cap %d: the last graph ran on %d threads, want %d", cap, n, want)
		}
		return text
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
