// ONNX Runtime through its C API, loaded with dlopen(): see ort.h for where the
// slot positions come from. Every OrtStatus is turned into a malloc'd message
// and released; every object made here is released exactly once.
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ort.h"

typedef void *status_t; /* OrtStatus*: NULL means success */

typedef struct {
	const void *(*GetApi)(uint32_t version);
	const char *(*GetVersionString)(void);
} api_base;

struct st_lib {
	void *dl;
	void *const *api; /* the OrtApi table, one function pointer a slot */
	void *env;
	void *meminfo; /* CPU memory info for input tensors */
	const char *version;
};

struct st_session {
	st_lib *lib;
	void *session;
	char *in_name, *out_name;
};

#define FN(slot, ret, ...) ((ret(*)(__VA_ARGS__))lib->api[ST_SLOT_##slot])

/* ORT enum values (onnxruntime_c_api.h). */
enum {
	LOG_ERROR = 3,             /* ORT_LOGGING_LEVEL_ERROR */
	TYPE_FLOAT = 1,            /* ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT */
	ORT_SEQUENTIAL = 0,        /* ExecutionMode */
	ORT_ENABLE_ALL = 99,       /* GraphOptimizationLevel */
	ORT_ARENA_ALLOCATOR = 1,   /* OrtArenaAllocator */
	ORT_MEM_TYPE_DEFAULT = 0,  /* OrtMemTypeDefault */
};

static char *dupf(const char *prefix, const char *msg) {
	size_t n = strlen(prefix) + strlen(msg) + 3;
	char *s = malloc(n);
	if (s) snprintf(s, n, "%s: %s", prefix, msg);
	return s;
}

/* check turns a failed status into *err and releases it; returns 1 on failure. */
static int check(st_lib *lib, status_t st, const char *what, char **err) {
	if (!st) return 0;
	const char *msg = FN(GetErrorMessage, const char *, const void *)(st);
	*err = dupf(what, msg ? msg : "unknown error");
	FN(ReleaseStatus, void, void *)(st);
	return 1;
}

int st_load(const char *path, st_lib **out, char **err) {
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		const char *e = dlerror();
		*err = dupf("dlopen", e ? e : path);
		return 1;
	}
	const api_base *(*get_base)(void) = (const api_base *(*)(void))dlsym(dl, "OrtGetApiBase");
	if (!get_base) {
		*err = dupf("dlsym OrtGetApiBase", "not found: not an ONNX Runtime library");
		dlclose(dl);
		return 1;
	}
	const api_base *base = get_base();
	const void *api = base ? base->GetApi(ST_ORT_API_VERSION) : NULL;
	if (!api) {
		*err = dupf("OrtGetApiBase", "the library does not serve C API version 16 (ONNX Runtime 1.16 or later is needed)");
		dlclose(dl);
		return 1;
	}
	st_lib *lib = calloc(1, sizeof *lib);
	if (!lib) {
		*err = strdup("out of memory");
		dlclose(dl);
		return 1;
	}
	lib->dl = dl;
	lib->api = (void *const *)api;
	lib->version = base->GetVersionString();
	if (check(lib, FN(CreateEnv, status_t, int, const char *, void **)(LOG_ERROR, "earshot-smartturn", &lib->env), "CreateEnv", err) ||
	    check(lib, FN(CreateCpuMemoryInfo, status_t, int, int, void **)(ORT_ARENA_ALLOCATOR, ORT_MEM_TYPE_DEFAULT, &lib->meminfo),
		  "CreateCpuMemoryInfo", err)) {
		if (lib->env) FN(ReleaseEnv, void, void *)(lib->env);
		free(lib);
		dlclose(dl);
		return 1;
	}
	*out = lib;
	return 0;
}

const char *st_version(const st_lib *lib) { return lib->version; }

static char *ort_strdup_free(st_lib *lib, void *alloc, char *s) {
	char *c = strdup(s);
	status_t st = FN(AllocatorFree, status_t, void *, void *)(alloc, s);
	if (st) FN(ReleaseStatus, void, void *)(st);
	return c;
}

/* check_input verifies input 0: float tensor of shape [N, mels, frames]. */
static int check_input(st_lib *lib, void *session, int64_t mels, int64_t frames, char **err) {
	void *ti = NULL;
	const void *tti = NULL;
	int type = 0, rc = 1;
	size_t nd = 0;
	int64_t dims[8];
	if (check(lib, FN(SessionGetInputTypeInfo, status_t, const void *, size_t, void **)(session, 0, &ti), "SessionGetInputTypeInfo", err)) return 1;
	if (check(lib, FN(CastTypeInfoToTensorInfo, status_t, const void *, const void **)(ti, &tti), "CastTypeInfoToTensorInfo", err)) goto done;
	if (!tti) {
		*err = strdup("the model's input is not a tensor");
		goto done;
	}
	if (check(lib, FN(GetTensorElementType, status_t, const void *, int *)(tti, &type), "GetTensorElementType", err) ||
	    check(lib, FN(GetDimensionsCount, status_t, const void *, size_t *)(tti, &nd), "GetDimensionsCount", err))
		goto done;
	if (type != TYPE_FLOAT || nd != 3) {
		char buf[160];
		snprintf(buf, sizeof buf, "the model's input has element type %d and %zu dimensions, not float32 [batch, %lld, %lld]",
			 type, nd, (long long)mels, (long long)frames);
		*err = strdup(buf);
		goto done;
	}
	if (check(lib, FN(GetDimensions, status_t, const void *, int64_t *, size_t)(tti, dims, nd), "GetDimensions", err)) goto done;
	if (dims[1] != mels || dims[2] != frames) {
		char buf[160];
		snprintf(buf, sizeof buf, "the model's input is [%lld, %lld, %lld], not [batch, %lld, %lld]", (long long)dims[0],
			 (long long)dims[1], (long long)dims[2], (long long)mels, (long long)frames);
		*err = strdup(buf);
		goto done;
	}
	rc = 0;
done:
	FN(ReleaseTypeInfo, void, void *)(ti);
	return rc;
}

int st_open(st_lib *lib, const char *model, int threads, const char *want_name, int64_t mels, int64_t frames,
	    st_session **out, char **err) {
	void *opts = NULL, *session = NULL, *alloc = NULL;
	char *name = NULL;
	size_t nin = 0, nout = 0;
	st_session *s = NULL;
	if (check(lib, FN(CreateSessionOptions, status_t, void **)(&opts), "CreateSessionOptions", err)) return 1;
	/* As pipecat's LocalSmartTurnAnalyzerV3: sequential, 1 inter-op thread, all optimisations.
	 * Idle pool threads sleep instead of spinning (a busy 2-core machine, as OMP_WAIT_POLICY). */
	if (check(lib, FN(SetSessionExecutionMode, status_t, void *, int)(opts, ORT_SEQUENTIAL), "SetSessionExecutionMode", err) ||
	    check(lib, FN(SetInterOpNumThreads, status_t, void *, int)(opts, 1), "SetInterOpNumThreads", err) ||
	    check(lib, FN(SetIntraOpNumThreads, status_t, void *, int)(opts, threads), "SetIntraOpNumThreads", err) ||
	    check(lib, FN(SetSessionGraphOptimizationLevel, status_t, void *, int)(opts, ORT_ENABLE_ALL), "SetSessionGraphOptimizationLevel", err) ||
	    check(lib, FN(AddSessionConfigEntry, status_t, void *, const char *, const char *)(opts, "session.intra_op.allow_spinning", "0"),
		  "AddSessionConfigEntry", err) ||
	    check(lib, FN(AddSessionConfigEntry, status_t, void *, const char *, const char *)(opts, "session.inter_op.allow_spinning", "0"),
		  "AddSessionConfigEntry", err))
		goto fail;
	if (check(lib, FN(CreateSession, status_t, const void *, const char *, const void *, void **)(lib->env, model, opts, &session),
		  "CreateSession", err))
		goto fail;
	if (check(lib, FN(SessionGetInputCount, status_t, const void *, size_t *)(session, &nin), "SessionGetInputCount", err) ||
	    check(lib, FN(SessionGetOutputCount, status_t, const void *, size_t *)(session, &nout), "SessionGetOutputCount", err))
		goto fail;
	if (nin != 1 || nout < 1) {
		char buf[128];
		snprintf(buf, sizeof buf, "the model has %zu inputs and %zu outputs, not 1 input and an output", nin, nout);
		*err = strdup(buf);
		goto fail;
	}
	if (check(lib, FN(GetAllocatorWithDefaultOptions, status_t, void **)(&alloc), "GetAllocatorWithDefaultOptions", err)) goto fail;
	s = calloc(1, sizeof *s);
	if (!s) {
		*err = strdup("out of memory");
		goto fail;
	}
	s->lib = lib;
	if (check(lib, FN(SessionGetInputName, status_t, const void *, size_t, void *, char **)(session, 0, alloc, &name), "SessionGetInputName", err))
		goto fail;
	s->in_name = ort_strdup_free(lib, alloc, name);
	if (!s->in_name) {
		*err = strdup("out of memory");
		goto fail;
	}
	if (strcmp(s->in_name, want_name) != 0) {
		char buf[256];
		snprintf(buf, sizeof buf, "the model's input is named %.100s, not %.100s", s->in_name, want_name);
		*err = strdup(buf);
		goto fail;
	}
	if (check_input(lib, session, mels, frames, err)) goto fail;
	if (check(lib, FN(SessionGetOutputName, status_t, const void *, size_t, void *, char **)(session, 0, alloc, &name), "SessionGetOutputName", err))
		goto fail;
	s->out_name = ort_strdup_free(lib, alloc, name);
	if (!s->out_name) {
		*err = strdup("out of memory");
		goto fail;
	}
	FN(ReleaseSessionOptions, void, void *)(opts);
	s->session = session;
	*out = s;
	return 0;
fail:
	if (s) {
		free(s->in_name);
		free(s->out_name);
		free(s);
	}
	if (session) FN(ReleaseSession, void, void *)(session);
	if (opts) FN(ReleaseSessionOptions, void, void *)(opts);
	return 1;
}

int st_run(st_session *s, const float *in, size_t n, float *prob, char **err) {
	st_lib *lib = s->lib;
	void *input = NULL, *output = NULL, *info = NULL;
	float *data = NULL;
	size_t count = 0;
	int rc = 1, type = 0;
	int64_t shape[3] = {1, 0, 0};
	/* The caller passes mels*frames floats; the shape is [1, mels, frames] from st_open's check. */
	shape[1] = 80;
	shape[2] = (int64_t)(n / 80);
	if (check(lib, FN(CreateTensorWithDataAsOrtValue, status_t, const void *, void *, size_t, const int64_t *, size_t, int, void **)(
			   lib->meminfo, (void *)in, n * sizeof(float), shape, 3, TYPE_FLOAT, &input),
		  "CreateTensorWithDataAsOrtValue", err))
		return 1;
	const char *in_names[1] = {s->in_name};
	const char *out_names[1] = {s->out_name};
	const void *inputs[1] = {input};
	if (check(lib, FN(Run, status_t, void *, const void *, const char *const *, const void *const *, size_t, const char *const *, size_t, void **)(
			   s->session, NULL, in_names, inputs, 1, out_names, 1, &output),
		  "Run", err))
		goto done;
	if (check(lib, FN(GetTensorTypeAndShape, status_t, const void *, void **)(output, &info), "GetTensorTypeAndShape", err) ||
	    check(lib, FN(GetTensorShapeElementCount, status_t, const void *, size_t *)(info, &count), "GetTensorShapeElementCount", err) ||
	    check(lib, FN(GetTensorElementType, status_t, const void *, int *)(info, &type), "GetTensorElementType", err) ||
	    check(lib, FN(GetTensorMutableData, status_t, void *, void **)(output, (void **)&data), "GetTensorMutableData", err))
		goto done;
	if (count < 1 || !data || type != TYPE_FLOAT) {
		*err = strdup("the model's first output is not a non-empty float32 tensor");
		goto done;
	}
	*prob = data[0];
	rc = 0;
done:
	if (info) FN(ReleaseTensorTypeAndShapeInfo, void, void *)(info);
	if (output) FN(ReleaseValue, void, void *)(output);
	if (input) FN(ReleaseValue, void, void *)(input);
	return rc;
}

void st_close(st_session *s) {
	if (!s) return;
	st_lib *lib = s->lib;
	FN(ReleaseSession, void, void *)(s->session);
	free(s->in_name);
	free(s->out_name);
	free(s);
}
