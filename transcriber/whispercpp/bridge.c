// C side of the cgo bridge: whisper/ggml log filtering (forwarded to a Go function
// exported in bridge.go) and the abort callback.
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
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

// The abort callback reads a flag that Go sets when the call's context is cancelled. It
// must not enter Go: whisper.cpp as scripts/whisper.sh builds it (patch 0001) calls it
// between the nodes of every graph, thousands of times per decode.
static bool earshot_abort_cb(void * user_data) {
	return atomic_load_explicit((atomic_int *)user_data, memory_order_relaxed) != 0;
}

void * earshot_abort_flag_new(void) {
	atomic_int * f = malloc(sizeof *f);
	if (f != NULL) {
		atomic_init(f, 0);
	}
	return f;
}

void earshot_abort_flag_set(void * flag) { atomic_store((atomic_int *)flag, 1); }

void earshot_abort_flag_free(void * flag) { free(flag); }

void earshot_set_abort(struct whisper_full_params * p, void * flag) {
	p->abort_callback = earshot_abort_cb;
	p->abort_callback_user_data = flag;
}

/* Key-term biasing (shallow fusion over token sequences). For each term, find the
 * longest k < len such that the last k tokens decoded so far are the term's first k
 * tokens, and add `next` (k > 0) or `first` (k == 0) to the logit of the term's token k.
 * Logits are raw scores: +b multiplies the token's odds by e^b. */
static void earshot_bias_cb(struct whisper_context * ctx, struct whisper_state * state,
		const whisper_token_data * tokens, int n_tokens, float * logits, void * user_data) {
	(void) ctx;
	(void) state;
	const earshot_bias * b = (const earshot_bias *) user_data;
	int off = 0;
	for (int t = 0; t < b->n_terms; t++) {
		const int32_t * seq = b->toks + off;
		int len = b->lens[t];
		off += len;
		for (int k = len - 1; k >= 0; k--) {
			if (k > n_tokens) {
				continue;
			}
			int match = 1;
			for (int i = 0; i < k; i++) {
				if (tokens[n_tokens - k + i].id != seq[i]) {
					match = 0;
					break;
				}
			}
			if (match) {
				if (seq[k] >= 0 && seq[k] < b->n_vocab) {
					logits[seq[k]] += k == 0 ? b->first : b->next;
				}
				break;
			}
		}
	}
}

void earshot_set_bias(struct whisper_full_params * p, earshot_bias * b) {
	p->logits_filter_callback = earshot_bias_cb;
	p->logits_filter_callback_user_data = b;
}
