// Executes a graph: compiled kernels, runtime kernels and control flow, with concrete
// shapes computed at run time by the same shape functions that inferred the symbolic
// ones. One GraphRunner per graph (subgraphs of If/Loop/Scan get their own).
//
// The executor knows nothing of lowering or LLVM: the compiler (compiler/kernel_table.h)
// or a model library (runtime/model_library.h) tells it which compiled entry point runs
// each node, through a KernelTable. That keeps it in libkiln_runtime.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <tuple>
#include <vector>

#include "runtime/kernel_abi.h"
#include "runtime/memory_plan.h"
#include "graph/shape_fn.h"
#include "graph/graph.h"

namespace kiln {

// The compiled kernel of one node that runs generated code.
struct StepKernel {
  std::string name;  // entry point (identical kernels share one)
  // For each runtime `dims` argument of the kernel: (operand index in inputs-then-outputs, axis).
  std::vector<std::pair<int, int>> dim_refs;
  std::string ir;  // its Loop IR, for `kiln inspect --ir` (empty when loaded from a library)
};
// By node, for a graph and all its subgraphs. A codegen node without an entry needs its
// kernel specialized at run time (its lowering needs input contents).
using KernelTable = std::unordered_map<const Node *, StepKernel>;

// Makes kernels at run time for nodes whose lowering needs input contents (the JIT).
// Libraries compiled ahead of time have none: every kernel was built in advance.
class Specializer {
 public:
  virtual ~Specializer() = default;
  virtual KernelFn specialize(const Node &n, const std::vector<const Tensor *> &ins, const std::vector<Tensor> &outs) = 0;
  // Kernels specialized so far.
  virtual size_t count() const = 0;
};

// Values computed so far; lookups fall back to the enclosing scope (subgraphs).
struct Env {
  const Env *parent = nullptr;
  std::unordered_map<const Value *, Tensor> vals;
  const Tensor *find(const Value *v) const;
};

class GraphRunner {
 public:
  // `specializer` may be null (then a node without a kernel in the table is an error).
  GraphRunner(const Graph &g, Specializer *specializer);
  ~GraphRunner();

  // Binds every codegen node of this graph and its subgraphs to its entry point, which
  // `resolve` finds by name, and makes the static memory plan when shapes allow.
  void bind(const KernelTable &table, const std::function<KernelFn(const std::string &)> &resolve);

  // Runs the graph on `inputs` (in graph input order) with outer-scope values from
  // `outer`; returns the graph outputs in order. With a SampleGather (a split batch) the
  // inputs hold its `samples` on dim 0 where the graph's inputs hold one.
  std::vector<Tensor> run(const std::vector<Tensor> &inputs, const Env *outer) const;

  const Graph &graph() const { return g_; }
  GraphRunner &subgraph(const Node &n, const std::string &attr) const;

  // Per-node wall time of this graph's steps (not subgraphs'), while enabled.
  struct NodeTime {
    const Node *node;
    double ms;
    int64_t calls;
  };
  void set_profiling(bool on) const { profiling_ = on; }
  std::vector<NodeTime> profile() const;

  // The memory plan from compile-time shapes, when every planned intermediate's shape is
  // static (registered for the static input signature, so even the first run uses it).
  std::optional<MemoryPlan> static_memory_plan() const;

  struct Step;

 private:
  struct Plan;
  struct RunState;
  // (step, output, lifetime) of every intermediate placed in the arena, from the
  // compile-time shapes; nullopt when one of them is not static.
  std::optional<std::vector<std::tuple<int, size_t, BufferLife>>> planned_slots() const;
  void run_step(const Step &s, Env &env, RunState *rs) const;
  Tensor alloc_output(RunState *rs, const Step &s, size_t out, DType dtype, std::vector<int64_t> shape) const;
  // A graph output's storage: a buffer of `bytes` from an earlier run that the caller has
  // dropped, else a new one; either way remembered for the runs after this one.
  Tensor recycled_output(RunState &rs, DType dtype, std::vector<int64_t> shape, size_t bytes) const;
  void run_kernel(const Step &s, const std::vector<const Tensor *> &ins, std::vector<Tensor> &outs) const;
  void run_control(const Step &s, Env &env) const;

  const Graph &g_;
  Specializer *specializer_;
  mutable bool profiling_ = false;
  // Memory plans by input-shape signature; each keeps a pool of arenas so concurrent runs
  // each get their own.
  mutable std::mutex plans_mutex_;
  mutable std::map<std::string, std::unique_ptr<Plan>> plans_;
  std::set<const Value *> graph_outputs_;
  std::set<const Value *> view_outputs_;  // outputs of Reshape-like steps (aliases)
  std::vector<std::unique_ptr<Step>> steps_;
  std::unordered_map<const Value *, size_t> last_use_;
  // A split batch's SampleGather (top-level graphs): the steps before it run once per
  // sample on the inputs' samples; -1 when there is none.
  long gather_ = -1;
  int64_t samples_ = 0;
  void run_steps(size_t begin, size_t end, Env &env, RunState *rs) const;
};

// Sample i of n stacked on dim 0 of `t`, in place (dim 0 is outermost: each is contiguous).
Tensor sample_of(const Tensor &t, int64_t i, int64_t n);

// The graph inputs in order, from named tensors; checks names, dtypes, ranks, static dims
// and that a symbolic dim has one value across inputs (user_error otherwise).
std::vector<Tensor> order_inputs(const Graph &g, const std::map<std::string, Tensor> &inputs);

// Generated code has no strings: codegen ops on string tensors run a C++ kernel instead.
bool node_uses_strings(const Node &n);

// Concrete output shapes of a node from concrete inputs (runs the shape function).
std::vector<ValueInfo> concrete_shapes(const Node &n, const std::vector<const Tensor *> &ins);

}  // namespace kiln
