// Lowers every codegen node of a graph (and its subgraphs) to a Loop IR kernel, and the
// JIT's run-time specialization of the nodes whose kernels need input contents.
#pragma once
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "compiler/kernel_builder.h"
#include "runtime/executor.h"

namespace kiln {

class Jit;

// Appends the kernels of `g`'s nodes to `kernels` (identical kernels once: `dedup` maps a
// kernel's body to its name) and records each node's entry point in `table`. Nodes whose
// lowering needs input contents get no entry (see Specializer).
void build_kernel_table(const Graph &g, const LowerOptions &opts, std::vector<Kernel> &kernels,
                        std::map<std::string, std::string> &dedup, KernelTable &table);

class JitSpecializer : public Specializer {
 public:
  JitSpecializer(Jit &jit, std::mutex &jit_mutex, const LowerOptions &opts)
      : jit_(jit), jit_mutex_(jit_mutex), opts_(opts) {}
  KernelFn specialize(const Node &n, const std::vector<const Tensor *> &ins, const std::vector<Tensor> &outs) override;
  size_t count() const override;

 private:
  struct NodeCache {
    std::set<int> value_inputs;  // inputs whose contents the lowering needed
    std::map<std::string, KernelFn> fns;  // by operand dtypes, shapes and needed contents
  };
  Jit &jit_;
  std::mutex &jit_mutex_;
  LowerOptions opts_;
  std::map<const Node *, NodeCache> cache_;
  int counter_ = 0;
};

}  // namespace kiln
