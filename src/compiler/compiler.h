// The compiler's front door: Model in, runnable CompiledModel out.
//   import (onnx/) -> graph passes for the opt level (pipeline.cpp) -> lowering of every
//   node to a Loop IR kernel -> one LLVM module -> ORC JIT -> GraphRunner
#pragma once
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/executor.h"
#include "runtime/memory_plan.h"
#include "graph/graph.h"
#include "lower/lower.h"

namespace kiln {

struct CompileOptions {
  int opt_level = 0;
  // native, x86-64-v3 (AVX2), x86-64-v4 (AVX-512); aarch64-linux-gnu for libraries only
  std::string target = "native";
  // Pins symbolic input dims: input name -> concrete shape (kiln run --shape).
  std::map<std::string, std::vector<int64_t>> input_shapes;
  std::string print_after;  // pass name whose output IR is printed to stderr ("all" for every pass)
  bool progress = false;    // progress lines on stderr
  bool kernel_cache = true;  // reuse compiled kernels from disk (codegen/kernel_cache.h)
  // -O2+: compile a conv net pinned to a batch of N > 1 for one sample and run the samples
  // one after another (passes/batch_split.cpp). Model libraries keep the batch whole.
  bool split_batch = true;
};

struct CompileStats {
  double seconds_passes = 0, seconds_lower = 0, seconds_llvm = 0;
  size_t kernels = 0;         // distinct compiled kernels
  size_t nodes = 0;           // nodes after graph passes
  size_t folded = 0;          // nodes removed by constant folding
  // Object groups (of the model's kernels and of constant folding) loaded from the kernel
  // cache, and compiled with LLVM because they were not there. Zero with the cache off.
  size_t kernel_cache_hits = 0, kernel_cache_misses = 0;
  // N when the model runs a batch of N as N samples of one (split-batch), else 0.
  int64_t batch_split = 0;
  // With a split batch: the nodes run per sample before the SampleGather where the samples
  // rejoin (the rest run on the whole batch); 0 when the whole graph runs per sample.
  size_t split_prefix_nodes = 0;
};

class GraphRunner;
class Jit;
class JitSpecializer;

class CompiledModel {
 public:
  static std::unique_ptr<CompiledModel> compile(Model model, const CompileOptions &opts = {});
  ~CompiledModel();

  const Model &model() const { return model_; }
  const Graph &graph() const { return *model_.graph; }
  const CompileStats &stats() const { return stats_; }

  // Runs with named inputs; checks names, dtypes and shapes (user_error on mismatch).
  // Returns the graph outputs in order. With a split batch (stats().batch_split = N) the
  // inputs carry N samples on dim 0 while graph() is the one-sample graph; the outputs are
  // the samples' outputs stacked.
  std::vector<Tensor> run(const std::map<std::string, Tensor> &inputs) const;
  // A graph input's or output's shape as callers see it: with a split batch, dim 0 is the
  // whole batch (graph() is the one-sample graph).
  Shape caller_shape(const Value &v) const;
  // The static memory plan (arena vs. all intermediates) when shapes are static.
  std::optional<MemoryPlan> static_memory_plan() const;
  // Per-node timing of the top-level graph (kiln bench --profile).
  void set_profiling(bool on) const;
  std::vector<std::pair<const Node *, double>> profile_ms() const;  // total ms per node
  // The Loop IR of every kernel (for inspect --ir).
  std::vector<std::string> kernel_ir() const;
  // Kernels specialized at run time so far (nodes whose code depends on input contents).
  size_t specialized_count() const;
  // The compiled entry point of every codegen node (model libraries serialize it).
  const KernelTable &kernel_table() const { return kernels_; }

 private:
  CompiledModel();
  Model model_;
  CompileStats stats_;
  std::unique_ptr<Jit> jit_;
  std::unique_ptr<std::mutex> jit_mutex_;
  KernelTable kernels_;
  std::unique_ptr<JitSpecializer> specializer_;
  std::unique_ptr<GraphRunner> runner_;
  std::vector<Tensor> run_split(const std::map<std::string, Tensor> &inputs) const;
};

// Runs the graph passes of `opt_level` in order (the pipeline of DESIGN.md). Constant
// folding runs on `jit`; weights are packed for the GEMM tiles of `target`.
void run_pipeline(Model &m, const CompileOptions &opts, Jit &jit, const LowerOptions &target, CompileStats &stats);

// Evaluates nodes on concrete inputs, compiling all their kernels in one module
// (constant folding and tests use it). Returns each node's outputs.
std::vector<std::vector<Tensor>> evaluate_nodes(const std::vector<const Node *> &nodes,
                                                const std::vector<std::vector<Tensor>> &inputs, Jit &jit);

}  // namespace kiln
