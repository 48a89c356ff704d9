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
  std::string dump_llvm_ir_path;  // if set, the optimized LLVM IR is written there
};

// A code-generation target: "native" (the host CPU and its features), "x86-64-v3"
// (AVX2 + FMA) or "x86-64-v4" (AVX-512).
class Jit {
 public:
  explicit Jit(const std::string &target = "native");
  ~Jit();
  Jit(const Jit &) = delete;
  Jit &operator=(const Jit &) = delete;

  // Compiles the kernels (one LLVM module) and returns their entry points by name.
  // Kernel names must be unique across all calls on this Jit.
  std::map<std::string, KernelFn> compile(const std::vector<Kernel> &kernels, const JitOptions &opts = {});

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
