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

class Jit {
 public:
  Jit();
  ~Jit();
  Jit(const Jit &) = delete;
  Jit &operator=(const Jit &) = delete;

  // Compiles the kernels (one LLVM module) and returns their entry points by name.
  // Kernel names must be unique across all calls on this Jit.
  std::map<std::string, KernelFn> compile(const std::vector<Kernel> &kernels, const JitOptions &opts = {});

  static std::string host_cpu();
  static std::string host_features();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln
