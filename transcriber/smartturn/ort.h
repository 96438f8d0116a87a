/* A minimal, self-written view of ONNX Runtime's C API (onnxruntime_c_api.h,
 * MIT, Microsoft): only what smartturn calls. The library is dlopen()ed at run
 * time, so neither the header nor the library is needed to build.
 *
 * OrtApi is a struct of function pointers that only ever grows at the end
 * (its header: "New functions must be added at the end"). ST_SLOT_* are the
 * positions of the members we call, counted in onnxruntime_c_api.h as
 * published (checked with offsetof against ORT_API_VERSION 29, the header of
 * ONNX Runtime 1.29); TestSlotsMatchHeader checks them again against any
 * header named by $EARSHOT_ORT_HEADER. Every slot used exists since API 16. */
#ifndef EARSHOT_SMARTTURN_ORT_H
#define EARSHOT_SMARTTURN_ORT_H
#include <stddef.h>
#include <stdint.h>

#define ST_ORT_API_VERSION 16 /* asked of GetApi: 1.16 or later serves it */

#define ST_SLOT_GetErrorCode 1
#define ST_SLOT_GetErrorMessage 2
#define ST_SLOT_CreateEnv 3
#define ST_SLOT_CreateSession 7
#define ST_SLOT_Run 9
#define ST_SLOT_CreateSessionOptions 10
#define ST_SLOT_SetSessionExecutionMode 13
#define ST_SLOT_SetSessionGraphOptimizationLevel 23
#define ST_SLOT_SetIntraOpNumThreads 24
#define ST_SLOT_SetInterOpNumThreads 25
#define ST_SLOT_SessionGetInputCount 30
#define ST_SLOT_SessionGetOutputCount 31
#define ST_SLOT_SessionGetInputTypeInfo 33
#define ST_SLOT_SessionGetInputName 36
#define ST_SLOT_SessionGetOutputName 37
#define ST_SLOT_CreateTensorWithDataAsOrtValue 49
#define ST_SLOT_GetTensorMutableData 51
#define ST_SLOT_CastTypeInfoToTensorInfo 55
#define ST_SLOT_GetTensorElementType 60
#define ST_SLOT_GetDimensionsCount 61
#define ST_SLOT_GetDimensions 62
#define ST_SLOT_GetTensorShapeElementCount 64
#define ST_SLOT_GetTensorTypeAndShape 65
#define ST_SLOT_CreateCpuMemoryInfo 69
#define ST_SLOT_AllocatorFree 76
#define ST_SLOT_GetAllocatorWithDefaultOptions 78
#define ST_SLOT_ReleaseEnv 92
#define ST_SLOT_ReleaseStatus 93
#define ST_SLOT_ReleaseMemoryInfo 94
#define ST_SLOT_ReleaseSession 95
#define ST_SLOT_ReleaseValue 96
#define ST_SLOT_ReleaseTypeInfo 98
#define ST_SLOT_ReleaseTensorTypeAndShapeInfo 99
#define ST_SLOT_ReleaseSessionOptions 100
#define ST_SLOT_AddSessionConfigEntry 130

typedef struct st_lib st_lib;         /* the loaded library, its API table and one OrtEnv */
typedef struct st_session st_session; /* one OrtSession of the Smart Turn model */

/* st_load dlopen()s path and readies the API; *err (malloc'd) on failure. */
int st_load(const char *path, st_lib **out, char **err);
const char *st_version(const st_lib *lib);

/* st_open loads the model; want_name/frames/mels say the input it must have. */
int st_open(st_lib *lib, const char *model, int threads, const char *want_name, int64_t mels,
	    int64_t frames, st_session **out, char **err);
/* st_run runs one batch-1 input of n floats; *prob gets the first output value. */
int st_run(st_session *s, const float *in, size_t n, float *prob, char **err);
void st_close(st_session *s);
#endif
