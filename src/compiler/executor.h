// Executes a graph: compiled kernels, runtime kernels and control flow, with concrete
// shapes computed at run time by the same shape functions that inferred the symbolic
// ones. One GraphRunner per graph (subgraphs of If/Loop/Scan get their own).
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <tuple>
#include <vector>

#include "compiler/kernel_builder.h"
#include "compiler/memory_plan.h"
#include "graph/shape_fn.h"
#include "graph/graph.h"

namespace kiln {

class Jit;

// Values computed so far; lookups fall back to the enclosing scope (subgraphs).
struct Env {
  const Env *parent = nullptr;
  std::unordered_map<const Value *, Tensor> vals;
  const Tensor *find(const Value *v) const;
};

class GraphRunner {
 public:
  GraphRunner(const Graph &g, Jit &jit, std::mutex &jit_mutex, const LowerOptions &opts);
  ~GraphRunner();

  // Builds the kernels of this graph and its subgraphs and appends them to `kernels`
  // (deduplicated by body through `dedup`: identical kernels compile once).
  void build(std::vector<Kernel> &kernels, std::map<std::string, std::string> &dedup);
  // After the JIT compiled `kernels`, binds entry points.
  void bind(const std::map<std::string, KernelFn> &fns);

  // Runs the graph on `inputs` (in graph input order) with outer-scope values from
  // `outer`; returns the graph outputs in order.
  std::vector<Tensor> run(const std::vector<Tensor> &inputs, const Env *outer) const;

  const Graph &graph() const { return g_; }
  GraphRunner &subgraph(const Node &n, const std::string &attr) const;
  // Number of kernels specialized at run time so far (inputs whose contents matter).
  size_t specialized_count() const;
  // The Loop IR of every kernel, for `kiln inspect --ir`.
  void collect_ir(std::vector<std::string> &out) const;

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
  void run_kernel(const Step &s, const std::vector<const Tensor *> &ins, std::vector<Tensor> &outs) const;
  KernelFn specialize(const Step &s, const std::vector<const Tensor *> &ins, const std::vector<Tensor> &outs) const;
  void run_control(const Step &s, Env &env) const;

  const Graph &g_;
  Jit &jit_;
  std::mutex &jit_mutex_;
  LowerOptions opts_;
  mutable bool profiling_ = false;
  // Memory plans by input-shape signature; each keeps a pool of arenas so concurrent runs
  // each get their own.
  mutable std::mutex plans_mutex_;
  mutable std::map<std::string, std::unique_ptr<Plan>> plans_;
  std::unordered_map<const Step *, int> step_index_;
  std::set<const Value *> graph_outputs_;
  std::vector<std::unique_ptr<Step>> steps_;
  std::unordered_map<const Value *, size_t> last_use_;
};

// Concrete output shapes of a node from concrete inputs (runs the shape function).
std::vector<ValueInfo> concrete_shapes(const Node &n, const std::vector<const Tensor *> &ins);

}  // namespace kiln
