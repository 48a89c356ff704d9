/* kiln runtime C API: load a model library written by `kiln compile` and run it.
 *
 *   kiln_model *m = kiln_model_load("resnet50.so");
 *   if (!m) { fprintf(stderr, "%s\n", kiln_last_error()); return 1; }
 *   kiln_tensor in = {.name = "input", .dtype = KILN_F32, .rank = 4, .shape = {1, 3, 224, 224},
 *                     .data = pixels, .bytes = sizeof pixels};
 *   kiln_tensor out = {.data = scores, .bytes = sizeof scores};
 *   if (kiln_model_run(m, &in, 1, &out, 1) != KILN_OK) { ... kiln_last_error() ... }
 *   kiln_model_free(m);
 *
 * Link with -lkiln_runtime (no LLVM, no protobuf). Buffers belong to the caller: inputs are
 * read in place (not copied), outputs are written into the caller's buffers. Every function
 * that can fail returns NULL or KILN_ERROR and leaves a one-line message for
 * kiln_last_error() (per thread). A model may be run from several threads at once. */
#ifndef KILN_RUNTIME_H
#define KILN_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define KILN_API __attribute__((visibility("default")))
#else
#define KILN_API
#endif

/* Bumped when this header changes incompatibly. */
#define KILN_RUNTIME_API_VERSION 1
#define KILN_MAX_RANK 8

typedef enum kiln_status { KILN_OK = 0, KILN_ERROR = 1 } kiln_status;

/* Element types (values match kiln's internal dtype codes). */
typedef enum kiln_dtype {
  KILN_UNDEFINED = 0,
  KILN_F32 = 1,
  KILN_U8 = 2,
  KILN_I8 = 3,
  KILN_U16 = 4,
  KILN_I16 = 5,
  KILN_I32 = 6,
  KILN_I64 = 7,
  KILN_STRING = 8, /* not supported through this API */
  KILN_BOOL = 9,
  KILN_F16 = 10,
  KILN_F64 = 11,
  KILN_U32 = 12,
  KILN_U64 = 13,
  KILN_BF16 = 16
} kiln_dtype;

/* A tensor view. For inputs: name (or NULL to go by position), dtype, rank, shape, data and
 * bytes (the size of data). For outputs: data and bytes are the caller's buffer and its
 * capacity; kiln writes name, dtype, rank and shape. In kiln_model_input_info/output_info
 * a symbolic dim reads as -1 (its name: kiln_model_input_dim_name). */
typedef struct kiln_tensor {
  const char *name;
  kiln_dtype dtype;
  int rank;
  int64_t shape[KILN_MAX_RANK];
  void *data;
  size_t bytes;
} kiln_tensor;

typedef struct kiln_model kiln_model;

KILN_API const char *kiln_version(void);
/* The last error on this thread, "" when none. */
KILN_API const char *kiln_last_error(void);

/* Loads a library from `kiln compile`. Refuses (NULL) a file that is not one, is truncated,
 * was built for another architecture or for CPU features this machine lacks, or by an
 * incompatible kiln. */
KILN_API kiln_model *kiln_model_load(const char *path);
KILN_API void kiln_model_free(kiln_model *m);

KILN_API int kiln_model_num_inputs(const kiln_model *m);
KILN_API int kiln_model_num_outputs(const kiln_model *m);
/* Name, dtype, rank and shape of input/output i (data NULL, bytes 0). */
KILN_API kiln_status kiln_model_input_info(const kiln_model *m, int i, kiln_tensor *info);
KILN_API kiln_status kiln_model_output_info(const kiln_model *m, int i, kiln_tensor *info);
/* The symbolic name of a dim ("batch", "(h / 4)"), NULL for a fixed dim or a bad index. */
KILN_API const char *kiln_model_input_dim_name(const kiln_model *m, int i, int axis);
KILN_API const char *kiln_model_output_dim_name(const kiln_model *m, int i, int axis);
/* The target it was compiled for ("native", "x86-64-v3", "aarch64-linux-gnu", ...). */
KILN_API const char *kiln_model_target(const kiln_model *m);

/* Runs the model. Inputs are matched by name, or by position when names are NULL. Outputs
 * are in model order; when an output buffer is too small, kiln still writes its dtype, rank
 * and shape, and returns KILN_ERROR naming the bytes it needs. An output whose data is NULL
 * (and bytes 0) gets a buffer allocated by kiln, to be released with kiln_free: the way to
 * run models whose output shapes depend on the inputs. */
KILN_API kiln_status kiln_model_run(kiln_model *m, const kiln_tensor *inputs, int num_inputs, kiln_tensor *outputs,
                                    int num_outputs);

/* Threads that parallel kernels use, for every model in the process (default: all cores,
 * or KILN_THREADS). */
KILN_API void kiln_set_num_threads(int n);
KILN_API int kiln_get_num_threads(void);

/* Releases a buffer kiln_model_run allocated. */
KILN_API void kiln_free(void *p);

/* Bytes of one element of `t` (0 for KILN_STRING/KILN_UNDEFINED). */
KILN_API size_t kiln_dtype_size(kiln_dtype t);

#ifdef __cplusplus
}
#endif

#endif /* KILN_RUNTIME_H */
