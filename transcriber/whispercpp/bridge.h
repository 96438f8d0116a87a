#ifndef EARSHOT_WHISPERCPP_BRIDGE_H
#define EARSHOT_WHISPERCPP_BRIDGE_H
#include <stdbool.h>
#include <stdint.h>
#include <whisper.h>
#include <ggml.h>

void earshot_log_install(int min_level);
void * earshot_abort_flag_new(void);
void earshot_abort_flag_set(void * flag);
void earshot_abort_flag_free(void * flag);
void earshot_set_abort(struct whisper_full_params * p, void * flag);

typedef struct {
	const int32_t * toks; /* the terms' tokens, one after the other */
	const int32_t * lens; /* tokens of each term */
	int n_terms;
	int n_vocab;
	float first; /* added to the logit of a term's first token */
	float next;  /* added to the logit of the token that continues a term begun */
} earshot_bias;

void earshot_set_bias(struct whisper_full_params * p, earshot_bias * b);
#endif
