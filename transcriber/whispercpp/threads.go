package whispercpp

/*
#include <whisper.h>
*/
import "C"

// SetThreadCap caps at n the threads of every graph computation (an encoder pass, a
// decoder pass) that starts from now on, in every Model and State of the process;
// n ≤ 0 lifts the cap (whisper patch 0012). A computation already running keeps its
// threads. The transcriber's pool sets it while the decodes running and its end-of-turn
// model's calls need more threads than there are cores.
func SetThreadCap(n int) { C.whisper_earshot_set_thread_cap(C.int(max(n, 0))) }

// lastThreads is the thread count the process's last graph computation started with.
func lastThreads() int { return int(C.whisper_earshot_last_threads()) }
