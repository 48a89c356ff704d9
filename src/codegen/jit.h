// In-process compilation of kernels: object files from ObjectCompiler, linked by ORC LLJIT.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "codegen/object_compiler.h"
#include "loop/kernel.h"

namespace kiln {

// A code-generation target this machine runs: "native" (the host CPU and its features),
// "x86-64-v3" (AVX2 + FMA) or "x86-64-v4" (AVX-512).
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
  int vector_registers() const;
  const std::string &target() const;

  static std::string host_cpu() { return host_cpu_name(); }
  static std::string host_features() { return host_cpu_features(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln
