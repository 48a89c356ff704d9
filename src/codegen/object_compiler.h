// Loop IR kernels -> relocatable object files for one code-generation target. The JIT
// links them in process (jit.h); `kiln compile` links them into a model library
// (compiler/model_library_writer.cpp).
//
// Targets: "native" (the host CPU and all its features), "x86-64-v3" (AVX2 + FMA),
// "x86-64-v4" (AVX-512), "aarch64-linux-gnu" (NEON; cross-compiled, not runnable here).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "loop/kernel.h"

namespace kiln {

struct JitOptions {
  int llvm_opt_level = 2;
  std::string dump_llvm_ir_path;  // if set, the optimized LLVM IR is written there (no cache)
  // Load object groups from the disk kernel cache and store new ones (kernel_cache.h).
  // Worth it only for kernels whose names are the same from run to run.
  bool kernel_cache = true;
};

// Object groups that compile() loaded from the kernel cache (hits) or had to compile with
// LLVM (misses; stored when the cache directory is writable). Zero while the cache is off.
struct JitCacheStats {
  size_t hits = 0, misses = 0;
};

struct ObjectGroup {
  std::string name;
  std::string object;  // the object file
  bool from_cache = false;
};

class ObjectCompiler {
 public:
  // kernel_cache = false: never reads or writes the disk kernel cache, whatever JitOptions
  // say. KILN_KERNEL_CACHE=0 in the environment has the same effect. Throws user_error for
  // an unknown target or one the host cannot run when `runnable` is asked for.
  ObjectCompiler(const std::string &target, bool kernel_cache, bool runnable);
  ~ObjectCompiler();

  // Compiles `kernels` in groups (one per core, in parallel), each loaded from the kernel
  // cache when there. Object names are unique per call (`prefix` + group number).
  std::vector<ObjectGroup> compile(const std::vector<Kernel> &kernels, const JitOptions &opts,
                                   const std::string &prefix);
  // Compiles one group without the cache (e.g. when a cached object fails to link).
  ObjectGroup compile_uncached(const std::vector<Kernel> &kernels, const JitOptions &opts, const std::string &name);

  // An object with the model data of a library: `kiln_model_data` (64-byte aligned),
  // `kiln_model_data_size`, the pointers `kiln_runtime_parallel_for`,
  // `kiln_runtime_scratch_alloc` and `kiln_runtime_scratch_free` the runtime fills in, and
  // hidden `kiln_parallel_for`, `kiln_scratch_alloc`, `kiln_scratch_free` that call through
  // them (what the kernels call).
  std::string model_data_object(const std::string &blob);

  const std::string &target() const;
  const std::string &triple() const;
  const std::string &arch() const;  // "x86_64" or "aarch64" (runtime/cpu_features.h)
  // The runtime/cpu_features.h names of the extensions the code may use.
  std::vector<std::string> cpu_features() const;
  int vector_bits() const;  // widest f32 vector register: 512, 256 or 128
  int vector_registers() const;  // 32 with AVX-512 and on AArch64, else 16
  const JitCacheStats &cache_stats() const;
  // Everything the target contributes to a kernel-cache key.
  const std::string &cache_salt() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string host_cpu_name();
std::string host_cpu_features();  // "+avx2,+fma,-avx512f,..."

}  // namespace kiln
