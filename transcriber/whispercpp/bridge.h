#ifndef EARSHOT_WHISPERCPP_BRIDGE_H
#define EARSHOT_WHISPERCPP_BRIDGE_H
#include <stdbool.h>
#include <stdint.h>
#include <whisper.h>
#include <ggml.h>

void earshot_log_install(int min_level);
void earshot_set_abort(struct whisper_full_params * p, uintptr_t handle);
#endif
