/* kiln compiler C API (libkiln.so): compile an ONNX model ahead of time into a model library
 * that libkiln_runtime loads (kiln/runtime.h). The `kiln compile` command and the Python
 * package (kiln.compile) use it.
 *
 *   kiln_compile_options o = {.target = "native", .opt_level = 3, .kernel_cache = 1};
 *   if (kiln_compile_file("model.onnx", &o, "model.so") != KILN_OK)
 *     fprintf(stderr, "%s\n", kiln_compile_last_error());
 */
#ifndef KILN_COMPILER_H
#define KILN_COMPILER_H

#include "kiln/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_compile_options {
  const char *target; /* NULL or "native", "x86-64-v3", "x86-64-v4", "aarch64-linux-gnu" */
  int opt_level;      /* 0..3 */
  /* NULL, or symbolic input dims to pin: "x=1x3x224x224;mask=1x128" (other dims stay dynamic) */
  const char *shapes;
  int kernel_cache; /* nonzero: reuse compiled kernels from ~/.cache/kiln/kernels */
  int progress;     /* nonzero: progress lines on stderr */
} kiln_compile_options;

/* Compiles the ONNX file at `onnx_path` (NULL options: native, -O3, cache on) into a
 * library at `out_path`. */
KILN_API kiln_status kiln_compile_file(const char *onnx_path, const kiln_compile_options *options, const char *out_path);
/* The same from a serialized ONNX model in memory (external data is resolved against the
 * current directory). */
KILN_API kiln_status kiln_compile_bytes(const void *onnx, size_t size, const kiln_compile_options *options,
                                        const char *out_path);
/* The last compile error on this thread, "" when none. */
KILN_API const char *kiln_compile_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* KILN_COMPILER_H */
