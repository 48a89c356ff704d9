// In-process compilation of kernels with ORC LLJIT for the host CPU.
#pragma once
#include <map>
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

// A code-generation target: "native" (the host CPU and its features), "x86-64-v3"
// (AVX2 + FMA) or "x86-64-v4" (AVX-512).
class Jit {
 public:
  // kernel_cache = false: this Jit never reads or writes the disk kernel cache, whatever
  // JitOptions say. KILN_KERNEL_CACHE=0 in the environment has the same effect.
  explicit Jit(const std::string &target = "native", bool kernel_cache = true);
  ~Jit();
  Jit(const Jit &) = delete;
  Jit &operator=(const Jit &) = delete;

  // Compiles the kernels and returns their entry points by name. They are split into
  // object groups, compiled in parallel, or loaded from the kernel cache when there.
  // Kernel names must be unique across all calls on this Jit.
  std::map<std::string, KernelFn> compile(const std::vector<Kernel> &kernels, const JitOptions &opts = {});

  // Totals over every compile() on this Jit so far.
  const JitCacheStats &cache_stats() const;

  // Width of the widest f32 vector registers of the target (512, 256 or 128).
  int vector_bits() const;
  const std::string &target() const;

  static std::string host_cpu();
  static std::string host_features();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln
