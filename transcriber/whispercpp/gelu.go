package whispercpp

/*
#include <ggml.h>
#include <ggml-cpu.h>

// earshot_gelu runs ggml's GELU (the op whisper's encoder and decoder use) on the CPU
// backend over x, n values, into y as one row, and into want as n rows of one value,
// where each value goes through the scalar loop of ggml_vec_gelu_f32 (the float16 table).
// Returns 0, or -1 when ggml cannot allocate or compute.
static int earshot_gelu(const float * x, float * y, float * want, int n, int threads) {
	struct ggml_init_params ip = { (size_t) n * 4 * sizeof(float) + 4 * 1024 * 1024, NULL, false };
	struct ggml_context * ctx = ggml_init(ip);
	if (!ctx) {
		return -1;
	}
	struct ggml_tensor * row = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, n);
	struct ggml_tensor * col = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 1, n);
	for (int i = 0; i < n; i++) {
		((float *) row->data)[i] = x[i];
		((float *) col->data)[i] = x[i];
	}
	struct ggml_tensor * out_row = ggml_gelu(ctx, row);
	struct ggml_tensor * out_col = ggml_gelu(ctx, col);
	struct ggml_cgraph * gf = ggml_new_graph(ctx);
	ggml_build_forward_expand(gf, out_row);
	ggml_build_forward_expand(gf, out_col);
	if (ggml_graph_compute_with_ctx(ctx, gf, threads) != GGML_STATUS_SUCCESS) {
		ggml_free(ctx);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		y[i] = ((float *) out_row->data)[i];
		want[i] = ((float *) out_col->data)[i];
	}
	ggml_free(ctx);
	return 0;
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// gelu runs ggml's GELU over x on threads CPU threads, as one row (whisper patch 0011's
// vector steps, 16 or 8 values at a time, then the scalar loop for the rest) and one value
// at a time (the scalar loop: ggml's float16 table), and returns both (TestGELUTable).
func gelu(x []float32, threads int) (got, want []float32, err error) {
	if len(x) == 0 {
		return nil, nil, nil
	}
	got, want = make([]float32, len(x)), make([]float32, len(x))
	if C.earshot_gelu((*C.float)(unsafe.Pointer(&x[0])), (*C.float)(unsafe.Pointer(&got[0])),
		(*C.float)(unsafe.Pointer(&want[0])), C.int(len(x)), C.int(max(threads, 1))) != 0 {
		return nil, nil, errors.New("ggml gelu: ggml could not allocate or compute its graph")
	}
	return got, want, nil
}
