// C side of the cgo bridge: whisper/ggml log filtering and the abort callback
// trampoline. Both forward to Go functions exported in bridge.go.
#include <stdatomic.h>
#include <stdint.h>
#include "bridge.h"
#include "_cgo_export.h"

// Messages below this level are dropped in C without entering Go.
// GGML_LOG_LEVEL_CONT (5) continuation lines are always dropped.
static atomic_int earshot_log_min = 100;

static void earshot_log_cb(enum ggml_log_level level, const char * text, void * user_data) {
	(void)user_data;
	int l = (int)level;
	if (l == GGML_LOG_LEVEL_CONT || l < atomic_load(&earshot_log_min)) {
		return;
	}
	earshotGoLog(l, (char *)text);
}

void earshot_log_install(int min_level) {
	atomic_store(&earshot_log_min, min_level);
	whisper_log_set(earshot_log_cb, NULL);
	ggml_log_set(earshot_log_cb, NULL);
}

static bool earshot_abort_cb(void * user_data) {
	return earshotGoAbort((uintptr_t)user_data);
}

void earshot_set_abort(struct whisper_full_params * p, uintptr_t handle) {
	p->abort_callback = earshot_abort_cb;
	p->abort_callback_user_data = (void *)handle;
}
