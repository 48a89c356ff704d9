// Loop IR -> LLVM IR. One llvm::Module holds many kernels (a whole model compiles in one
// go). Parallel loops are outlined into closures called through kiln_parallel_for.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "loop/kernel.h"

namespace llvm {
class LLVMContext;
class Module;
class TargetMachine;
}  // namespace llvm

namespace kiln {

// Emits every kernel into `m` (which must already carry the target's triple and data
// layout). `cpu`/`features` become function attributes so the vectorizer uses the ISA.
void emit_kernels(llvm::Module &m, const std::vector<Kernel> &kernels, const std::string &cpu,
                  const std::string &features);

// Runs LLVM's standard optimization pipeline at `opt_level` (0-3) over the module.
void optimize_module(llvm::Module &m, llvm::TargetMachine &tm, int opt_level);

}  // namespace kiln
