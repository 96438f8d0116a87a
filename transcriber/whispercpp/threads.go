package whispercpp

/*
#include <whisper.h>
*/
import "C"

import (
	"fmt"
	"os"
	"strconv"
)

// SetThreadCap caps at n the threads of every graph computation (an encoder pass, a
// decoder pass) that starts from now on, in every Model and State of the process;
// n ≤ 0 lifts the cap (whisper patch 0012). A computation already running keeps its
// threads. The transcriber's pool sets it while the decodes running and its end-of-turn
// model's calls need more threads than there are cores.
func SetThreadCap(n int) { C.whisper_earshot_set_thread_cap(C.int(max(n, 0))) }

// lastThreads is the thread count the process's last graph computation started with.
func lastThreads() int { return int(C.whisper_earshot_last_threads()) }

// OneThreadRows: a decoder pass over fewer tokens than this runs on one thread (whisper
// patch 0013): every pass of greedy decoding after the prompt (one token, the last
// sampled) and a prompt of a few special tokens, where ggml's barrier after each graph
// node costs more than the node's work on two threads. A draft's verifying pass (9 to 65
// rows, patch 0007) and a prompt of earlier text keep the decode's threads. The
// measurements: the patch's header (scripts/whisper-patches/0013-…) and BENCHMARKS.md, "One
// thread per decoded token". EARSHOT_ONE_THREAD_ROWS sets another value for comparisons
// (0: every pass on the decode's threads, as whisper.cpp does).
const OneThreadRows = 8

func init() {
	rows := OneThreadRows
	if v, ok := os.LookupEnv("EARSHOT_ONE_THREAD_ROWS"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fmt.Fprintf(os.Stderr, "earshot: EARSHOT_ONE_THREAD_ROWS=%q is not a row count (0 or more): using %d; unset it or give a number\n", v, OneThreadRows)
		} else {
			rows = n
		}
	}
	SetOneThreadRows(rows)
}

// SetOneThreadRows sets the row count under which a decoder pass runs on one thread, in
// every Model and State of the process (0: none).
func SetOneThreadRows(rows int) { C.whisper_earshot_set_one_thread_rows(C.int(max(rows, 0))) }
