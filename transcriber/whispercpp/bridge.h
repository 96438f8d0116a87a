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
#endif
