#include "runtime/executor.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <functional>

#include "runtime/control_flow.h"
#include "runtime/runtime_kernel.h"
#include "support/error.h"
#include "support/memory.h"

namespace kiln {

struct GraphRunner::Step {
  const Node *node = nullptr;
  ExecPath path = ExecPath::Codegen;
  KernelFn fn = nullptr;
  std::vector<std::pair<int, int>> dim_refs;
  // Compile-time shapes of the kernel's operands (inputs then outputs): its static dims
  // are baked into the code, so run-time tensors must agree.
  std::vector<Shape> operand_shapes;
  // Kernels that need input contents are specialized when they run.
  bool specialize = false;
  // Reshape-like: the output is the input's storage under another shape (no copy).
  bool view = false;
  std::map<std::string, std::vector<std::unique_ptr<GraphRunner>>> subgraphs;
  std::vector<const Value *> frees;  // values whose last use is this step
  int index = 0;                     // position in the graph's steps
  // A codegen node whose outputs all have compile-time shapes: their dtypes and dims, so a
  // run does not evaluate the shape function again (its kernel only runs on those shapes).
  bool static_outputs = false;
  std::vector<std::pair<DType, std::vector<int64_t>>> output_shapes;
  mutable double ms = 0;             // profiling totals
  mutable int64_t calls = 0;
};

// A memory plan for one input-shape signature: slot (step, output) -> arena offset.
struct GraphRunner::Plan {
  MemoryPlan plan;
  std::map<std::pair<int, size_t>, size_t> slot;  // -> buffer index in plan
  std::vector<size_t> bytes;                      // planned size per buffer
  std::vector<std::unique_ptr<uint8_t, void (*)(void *)>> free_arenas;
  // Storage of graph outputs handed out by earlier runs (bytes, storage), newest first.
  // A buffer the caller has dropped (the pool holds its only reference) is the next
  // run's output of that size: no fresh pages for the kernel to fault in and zero.
  std::vector<std::pair<size_t, std::shared_ptr<void>>> output_pool;
};

// Per-run allocation state of a top-level run: the arena in use, or a recording of
// buffer lifetimes from which the plan for this signature is made.
struct GraphRunner::RunState {
  Plan *plan = nullptr;
  uint8_t *arena = nullptr;
  std::unique_ptr<uint8_t, void (*)(void *)> owned{nullptr, std::free};
  bool record = false;
  std::vector<BufferLife> lives;
  std::vector<std::pair<int, size_t>> slots;
  // Graph-output storage: taken from the plan's pool at the start, handed out this run.
  std::vector<std::pair<size_t, std::shared_ptr<void>>> pool, given;
  bool in_arena(const void *p) const {
    return arena && p >= arena && p < arena + plan->plan.arena_bytes;
  }
};

const Tensor *Env::find(const Value *v) const {
  for (const Env *e = this; e; e = e->parent) {
    auto it = e->vals.find(v);
    if (it != e->vals.end()) return &it->second;
  }
  return nullptr;
}

namespace {

// Values a node reads, including outer-scope values its subgraphs read.
void collect_uses(const Node &n, std::vector<const Value *> &out) {
  for (Value *v : n.inputs) {
    if (v) out.push_back(v);
  }
  for (auto &[k, a] : n.attrs) {
    for (auto &g : a.graphs) {
      for (auto &sn : g->nodes) collect_uses(*sn, out);
      for (Value *o : g->outputs) out.push_back(o);
    }
  }
}

bool uses_strings(const Node &n, const std::vector<const Tensor *> &ins) {
  for (const Tensor *t : ins) {
    if (t && t->dtype() == DType::String) return true;
  }
  for (const Value *v : n.inputs) {
    if (v && v->dtype == DType::String) return true;
  }
  for (const Value *v : n.outputs) {
    if (v && v->dtype == DType::String) return true;
  }
  return false;
}

}  // namespace

bool node_uses_strings(const Node &n) { return uses_strings(n, {}); }

GraphRunner::GraphRunner(const Graph &g, Specializer *specializer) : g_(g), specializer_(specializer) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    auto s = std::make_unique<Step>();
    s->node = g.nodes[i].get();
    s->path = op_path(s->node->kind);
    for (auto &[name, a] : s->node->attrs) {
      for (auto &sub : a.graphs) s->subgraphs[name].push_back(std::make_unique<GraphRunner>(*sub, specializer));
    }
    std::vector<const Value *> uses;
    collect_uses(*s->node, uses);
    for (const Value *v : uses) last_use_[v] = i;
    OpKind k = s->node->kind;
    const Value *in = s->node->input(0), *out = s->node->output(0);
    s->view = (k == OpKind::Reshape || k == OpKind::Flatten || k == OpKind::Squeeze || k == OpKind::Unsqueeze) &&
              in && out && in->dtype == out->dtype && in->dtype != DType::String;
    s->index = static_cast<int>(i);
    s->static_outputs = s->path == ExecPath::Codegen && !s->view && !uses_strings(*s->node, {});
    // Shape functions also check index-like inputs against the data (Gather's indices in
    // range): a node reading a non-constant integer or bool tensor keeps evaluating them.
    for (const Value *v : s->node->inputs) {
      if (v && !v->constant && !dtype_is_float(v->dtype)) s->static_outputs = false;
    }
    for (const Value *o : s->node->outputs) {
      if (!o) {
        s->output_shapes.emplace_back(DType::Undefined, std::vector<int64_t>{});
        continue;
      }
      s->static_outputs &= o->has_shape && shape_is_const(o->shape) && o->dtype != DType::Undefined;
      s->output_shapes.emplace_back(o->dtype, s->static_outputs ? shape_values(o->shape) : std::vector<int64_t>{});
    }
    if (s->node->kind == OpKind::SampleGather) {
      internal_assert(gather_ < 0) << "more than one SampleGather in graph '" << g.name << "'";
      gather_ = static_cast<long>(i);
      samples_ = s->node->attr_i("samples", 0);
    }
    steps_.push_back(std::move(s));
  }
  // A view keeps its root's storage: the root's buffer lives until the view's last use.
  std::unordered_map<const Value *, const Value *> root;
  for (auto &s : steps_) {
    if (!s->view) continue;
    const Value *in = s->node->input(0), *out = s->node->output(0);
    auto r = root.find(in);
    root[out] = r == root.end() ? in : r->second;
    view_outputs_.insert(out);
  }
  std::set<const Value *> outputs(g.outputs.begin(), g.outputs.end());
  for (auto &[view, r] : root) {
    // A view returned as a graph output is read (copied out) after the last step.
    auto lv = last_use_.find(view);
    size_t last = outputs.count(view) ? steps_.size() - 1 : lv != last_use_.end() ? lv->second : 0;
    last_use_[r] = std::max(last_use_[r], last);
  }
  graph_outputs_.insert(g.outputs.begin(), g.outputs.end());
  std::set<const Value *> keep(g.outputs.begin(), g.outputs.end());
  for (auto &[v, i] : last_use_) {
    if (!keep.count(v) && !v->constant) steps_[i]->frees.push_back(v);
  }
}

GraphRunner::~GraphRunner() = default;

void GraphRunner::bind(const KernelTable &table, const std::function<KernelFn(const std::string &)> &resolve) {
  for (auto &s : steps_) {
    for (auto &[name, runners] : s->subgraphs) {
      for (auto &r : runners) r->bind(table, resolve);
    }
    const Node &n = *s->node;
    if (s->path != ExecPath::Codegen || uses_strings(n, {})) continue;
    auto it = table.find(&n);
    if (it == table.end()) {
      user_assert(specializer_) << n.describe() << ": no compiled kernel (its code depends on input values, "
                                << "which only the JIT can specialize at run time)";
      s->specialize = true;
      continue;
    }
    s->fn = resolve(it->second.name);
    s->dim_refs = it->second.dim_refs;
    for (const Value *v : n.inputs) s->operand_shapes.push_back(v ? v->shape : Shape{});
    for (const Value *v : n.outputs) s->operand_shapes.push_back(v ? v->shape : Shape{});
  }
  // With static shapes the memory plan is known now.
  std::string signature;
  for (const Value *v : g_.inputs) {
    if (!v->has_shape || !shape_is_const(v->shape)) return;
    signature += std::string(dtype_name(v->dtype)) + shape_str(shape_values(v->shape)) + ";";
  }
  auto slots = planned_slots();
  if (!slots) return;
  auto plan = std::make_unique<Plan>();
  std::vector<BufferLife> lives;
  for (size_t i = 0; i < slots->size(); ++i) {
    const auto &[step, out, life] = (*slots)[i];
    plan->slot[{step, out}] = i;
    plan->bytes.push_back(life.bytes);
    lives.push_back(life);
  }
  plan->plan = plan_memory(lives);
  std::lock_guard<std::mutex> lock(plans_mutex_);
  plans_.emplace(signature, std::move(plan));
}

std::optional<std::vector<std::tuple<int, size_t, BufferLife>>> GraphRunner::planned_slots() const {
  std::vector<std::tuple<int, size_t, BufferLife>> slots;
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step &s = *steps_[i];
    if (s.path != ExecPath::Codegen || s.view || uses_strings(*s.node, {})) continue;
    for (size_t o = 0; o < s.node->outputs.size(); ++o) {
      const Value *v = s.node->outputs[o];
      if (!v || graph_outputs_.count(v) || v->dtype == DType::Undefined) continue;
      if (!v->has_shape || !shape_is_const(v->shape)) return std::nullopt;
      auto lu = last_use_.find(v);
      size_t bytes = static_cast<size_t>(shape_numel(shape_values(v->shape))) * dtype_size(v->dtype);
      int last = lu == last_use_.end() ? static_cast<int>(i) : static_cast<int>(lu->second);
      slots.emplace_back(static_cast<int>(i), o, BufferLife{bytes, static_cast<int>(i), last});
    }
  }
  return slots;
}

std::optional<MemoryPlan> GraphRunner::static_memory_plan() const {
  auto slots = planned_slots();
  if (!slots) return std::nullopt;
  std::vector<BufferLife> lives;
  for (auto &t : *slots) lives.push_back(std::get<2>(t));
  return plan_memory(lives);
}

GraphRunner &GraphRunner::subgraph(const Node &n, const std::string &attr) const {
  for (auto &s : steps_) {
    if (s->node != &n) continue;
    auto it = s->subgraphs.find(attr);
    internal_assert(it != s->subgraphs.end() && !it->second.empty()) << n.describe() << " has no subgraph " << attr;
    return *it->second[0];
  }
  internal_error << "node not in this graph: " << n.describe();
  return *static_cast<GraphRunner *>(nullptr);
}

std::vector<GraphRunner::NodeTime> GraphRunner::profile() const {
  std::vector<NodeTime> out;
  for (auto &s : steps_) out.push_back({s->node, s->ms, s->calls});
  return out;
}

std::vector<Tensor> order_inputs(const Graph &g, const std::map<std::string, Tensor> &inputs) {
  std::vector<Tensor> ordered;
  std::map<std::string, int64_t> bound;  // symbol -> value, consistent across inputs
  for (const Value *v : g.inputs) {
    auto it = inputs.find(v->name);
    user_assert(it != inputs.end()) << "missing input '" << v->name << "' (" << dtype_name(v->dtype)
                                    << shape_str(v->shape) << ")";
    const Tensor &t = it->second;
    user_assert(t.dtype() == v->dtype) << "input '" << v->name << "' has dtype " << dtype_name(t.dtype())
                                       << ", the model expects " << dtype_name(v->dtype);
    if (v->has_shape) {
      user_assert(t.rank() == static_cast<int>(v->shape.size()))
          << "input '" << v->name << "' has shape " << shape_str(t.shape()) << ", the model expects rank "
          << v->shape.size() << " " << shape_str(v->shape);
      for (size_t i = 0; i < v->shape.size(); ++i) {
        const Dim &d = v->shape[i];
        int64_t got = t.shape()[i];
        if (d.is_const()) {
          user_assert(d.value() == got) << "input '" << v->name << "' has shape " << shape_str(t.shape())
                                        << ", the model expects " << shape_str(v->shape);
        } else if (d.kind() == Dim::Kind::Sym) {
          auto [b, fresh] = bound.emplace(d.name(), got);
          user_assert(fresh || b->second == got) << "input '" << v->name << "': dim '" << d.name() << "' is " << got
                                                 << " here but " << b->second << " in another input";
        }
      }
    }
    ordered.push_back(t);
  }
  for (auto &[name, t] : inputs) {
    bool known = false;
    for (const Value *v : g.inputs) known |= v->name == name;
    user_assert(known) << "the model has no input named '" << name << "'";
  }
  return ordered;
}

std::vector<ValueInfo> concrete_shapes(const Node &n, const std::vector<const Tensor *> &ins) {
  std::vector<ValueInfo> infos;
  for (const Tensor *t : ins) {
    ValueInfo v;
    if (t) {
      v.dtype = t->dtype();
      v.shape = shape_from(t->shape());
      v.has_shape = true;
      v.value = t;
    }
    infos.push_back(std::move(v));
  }
  ShapeContext c(n, std::move(infos), [&]() -> Dim {
    internal_error << n.describe() << ": shape function minted a symbol at run time";
    return Dim(0);
  });
  shape_fn_of(n.kind)(c);
  for (auto &o : c.out) {
    if (o.dtype != DType::Undefined) {
      user_assert(o.has_shape && shape_is_const(o.shape)) << n.describe() << ": could not compute output shape";
    }
  }
  return c.out;
}

std::vector<Tensor> GraphRunner::run(const std::vector<Tensor> &inputs, const Env *outer) const {
  Env env;
  env.parent = outer;
  internal_assert(inputs.size() == g_.inputs.size()) << "graph '" << g_.name << "' expects " << g_.inputs.size()
                                                      << " inputs, got " << inputs.size();
  const bool split = gather_ >= 0 && !outer;
  for (size_t i = 0; i < inputs.size(); ++i) env.vals[g_.inputs[i]] = split ? sample_of(inputs[i], 0, samples_) : inputs[i];
  for (const Value *v : g_.initializers) env.vals[v] = *v->constant;
  // Top-level runs place intermediates in an arena planned for this input signature.
  RunState state;
  RunState *rs = nullptr;
  std::string signature;
  if (!outer) {
    rs = &state;
    for (const Value *v : g_.inputs) {
      const Tensor &t = env.vals[v];
      signature += std::string(dtype_name(t.dtype())) + shape_str(t.shape()) + ";";
    }
    std::lock_guard<std::mutex> lock(plans_mutex_);
    auto it = plans_.find(signature);
    if (it == plans_.end()) {
      state.record = true;
    } else {
      state.plan = it->second.get();
      if (!state.plan->free_arenas.empty()) {
        state.owned = std::move(state.plan->free_arenas.back());
        state.plan->free_arenas.pop_back();
      } else {
        state.owned.reset(static_cast<uint8_t *>(alloc_buffer(state.plan->plan.arena_bytes)));
        user_assert(state.owned != nullptr) << "out of memory allocating a " << state.plan->plan.arena_bytes << "-byte arena";
      }
      state.arena = state.owned.get();
      if (std::getenv("KILN_POISON_ARENA")) std::memset(state.arena, 0xff, state.plan->plan.arena_bytes);
      state.pool = std::move(state.plan->output_pool);
      state.plan->output_pool.clear();
    }
  }
  size_t first = 0;
  if (split) {
    // The steps before the SampleGather once per sample (the arena's prefix buffers reused;
    // a first run records them once), each sample's value copied into the stacked one.
    const Step &gs = *steps_[static_cast<size_t>(gather_)];
    Tensor whole;
    for (int64_t smp = 0; smp < samples_; ++smp) {
      for (size_t i = 0; i < inputs.size(); ++i) env.vals[g_.inputs[i]] = sample_of(inputs[i], smp, samples_);
      bool record = rs->record;
      rs->record = record && smp == 0;
      run_steps(0, static_cast<size_t>(gather_), env, rs);
      rs->record = record;
      const Tensor *x = env.find(gs.node->input(0));
      internal_assert(x) << gs.node->describe() << ": its input was not computed";
      if (smp == 0) {
        std::vector<int64_t> shape = x->shape();
        shape[0] *= samples_;
        whole = Tensor(x->dtype(), shape);
      }
      std::memcpy(static_cast<char *>(whole.data()) + x->nbytes() * static_cast<size_t>(smp), x->data(), x->nbytes());
      for (const Value *v : gs.frees) env.vals.erase(v);
    }
    env.vals[gs.node->output(0)] = std::move(whole);
    for (const Value *v : g_.inputs) env.vals.erase(v);
    first = static_cast<size_t>(gather_) + 1;
  }
  run_steps(first, steps_.size(), env, rs);
  std::vector<Tensor> outs;
  for (const Value *v : g_.outputs) {
    const Tensor *t = env.find(v);
    if (!t && v->constant) t = &*v->constant;
    internal_assert(t) << "graph output '" << v->name << "' was not computed";
    // A view of another value (an input, a constant, the arena) is returned as its own copy.
    outs.push_back((rs && rs->in_arena(t->data())) || view_outputs_.count(v) ? t->clone() : *t);
  }
  env.vals.clear();
  if (rs && state.record) {
    auto plan = std::make_unique<Plan>();
    plan->plan = plan_memory(state.lives);
    for (size_t i = 0; i < state.slots.size(); ++i) {
      plan->slot[state.slots[i]] = i;
      plan->bytes.push_back(state.lives[i].bytes);
    }
    std::lock_guard<std::mutex> lock(plans_mutex_);
    auto placed = plans_.emplace(signature, std::move(plan));
    if (placed.second) placed.first->second->output_pool = std::move(state.given);
  } else if (rs && state.plan) {
    std::lock_guard<std::mutex> lock(plans_mutex_);
    state.plan->free_arenas.push_back(std::move(state.owned));
    // This run's outputs first (the caller's next run may still hold them: the one after
    // reuses them), then the older buffers, a bounded number per graph output.
    auto &pool = state.plan->output_pool;
    for (auto *older : {&pool, &state.pool}) {
      for (auto &e : *older) state.given.push_back(std::move(e));
    }
    if (state.given.size() > 2 * g_.outputs.size()) state.given.resize(2 * g_.outputs.size());
    pool = std::move(state.given);
  }
  return outs;
}

void GraphRunner::run_steps(size_t begin, size_t end, Env &env, RunState *rs) const {
  for (size_t k = begin; k < end; ++k) {
    Step &s = *steps_[k];
    if (profiling_) {
      auto t0 = std::chrono::steady_clock::now();
      run_step(s, env, rs);
      s.ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      ++s.calls;
    } else {
      run_step(s, env, rs);
    }
    for (const Value *v : s.frees) env.vals.erase(v);
  }
}

Tensor sample_of(const Tensor &t, int64_t i, int64_t n) {
  user_assert(t.rank() >= 1 && t.shape()[0] == n)
      << "an input has shape " << shape_str(t.shape()) << ", the model was compiled for a batch of " << n << " on dim 0";
  std::vector<int64_t> shape = t.shape();
  shape[0] = 1;
  size_t bytes = t.nbytes() / static_cast<size_t>(n);
  return Tensor::borrow(t.dtype(), shape, static_cast<char *>(const_cast<void *>(t.data())) + bytes * static_cast<size_t>(i));
}

void run_sample_gather(RuntimeKernelContext &c) {
  internal_error << c.node.describe() << ": runs only in the executor's sample loop (a top-level graph with a split batch)";
}

Tensor GraphRunner::alloc_output(RunState *rs, const Step &s, size_t out, DType dtype, std::vector<int64_t> shape) const {
  const Value *v = s.node->outputs[out];
  if (!rs || dtype == DType::String) return Tensor(dtype, std::move(shape));
  size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  if (graph_outputs_.count(v)) return recycled_output(*rs, dtype, std::move(shape), bytes);
  int step = s.index;
  if (rs->record) {
    auto lu = last_use_.find(v);
    rs->lives.push_back({bytes, step, lu == last_use_.end() ? step : static_cast<int>(lu->second)});
    rs->slots.emplace_back(step, out);
  } else if (rs->arena) {
    auto it = rs->plan->slot.find({step, out});
    if (it != rs->plan->slot.end() && bytes <= rs->plan->bytes[it->second]) {
      return Tensor::borrow(dtype, std::move(shape), rs->arena + rs->plan->plan.offsets[it->second]);
    }
  }
  return Tensor(dtype, std::move(shape));
}

Tensor GraphRunner::recycled_output(RunState &rs, DType dtype, std::vector<int64_t> shape, size_t bytes) const {
  for (auto it = rs.pool.begin(); it != rs.pool.end(); ++it) {
    if (it->first != bytes || it->second.use_count() != 1) continue;
    // The caller's last reference is gone: its reads of the buffer come before our writes.
    std::atomic_thread_fence(std::memory_order_acquire);
    Tensor t = Tensor::over(dtype, std::move(shape), std::move(it->second));
    rs.pool.erase(it);
    if (std::getenv("KILN_POISON_ARENA")) std::memset(t.data(), 0xff, bytes);
    rs.given.emplace_back(bytes, t.storage());
    return t;
  }
  Tensor t(dtype, std::move(shape));
  if (t.storage()) rs.given.emplace_back(bytes, t.storage());
  return t;
}

void GraphRunner::run_step(const Step &s, Env &env, RunState *rs) const {
  const Node &n = *s.node;
  if (s.path == ExecPath::Control) {
    run_control(s, env);
    // Outputs passed through from arena-placed values are copied: the arena slot may be
    // reused once its value dies.
    for (Value *o : n.outputs) {
      auto it = o ? env.vals.find(o) : env.vals.end();
      if (rs && it != env.vals.end() && rs->in_arena(it->second.data())) it->second = it->second.clone();
    }
    return;
  }
  std::vector<const Tensor *> ins;
  for (Value *v : n.inputs) {
    if (!v) {
      ins.push_back(nullptr);
      continue;
    }
    const Tensor *t = env.find(v);
    if (!t && v->constant) t = &*v->constant;
    internal_assert(t) << n.describe() << ": input '" << v->name << "' not computed";
    ins.push_back(t);
  }
  std::vector<Tensor> outs(n.outputs.size());
  RunFn string_fn = nullptr;
  if (s.path == ExecPath::Codegen && uses_strings(n, ins)) {
    string_fn = string_kernel_of(n.kind);
    user_assert(string_fn) << n.describe() << ": string tensors are not supported by this op";
  }
  if (s.path == ExecPath::Runtime || string_fn) {
    RuntimeKernelContext c{n, ins, std::vector<Tensor>(n.outputs.size())};
    (string_fn ? string_fn : run_fn_of(n.kind))(c);
    outs = std::move(c.out);
    for (Tensor &t : outs) {
      if (rs && t.defined() && rs->in_arena(t.data())) t = t.clone();  // an alias of an arena input
    }
  } else if (s.view && ins[0]) {
    std::vector<ValueInfo> shapes = concrete_shapes(n, ins);
    outs[0] = ins[0]->reshaped(shape_values(shapes[0].shape));
  } else if (s.static_outputs && rs) {  // top level: subgraph shapes may vary per iteration
    for (size_t i = 0; i < outs.size(); ++i) {
      if (n.outputs[i]) outs[i] = alloc_output(rs, s, i, s.output_shapes[i].first, s.output_shapes[i].second);
    }
    run_kernel(s, ins, outs);
  } else {
    std::vector<ValueInfo> shapes = concrete_shapes(n, ins);
    for (size_t i = 0; i < outs.size(); ++i) {
      if (n.outputs[i] && shapes[i].dtype != DType::Undefined) {
        outs[i] = alloc_output(rs, s, i, shapes[i].dtype, shape_values(shapes[i].shape));
      }
    }
    run_kernel(s, ins, outs);
  }
  for (size_t i = 0; i < outs.size(); ++i) {
    if (n.outputs[i]) env.vals[n.outputs[i]] = std::move(outs[i]);
  }
}

void GraphRunner::run_kernel(const Step &s, const std::vector<const Tensor *> &ins, std::vector<Tensor> &outs) const {
  KernelFn fn = s.fn;
  const std::vector<std::pair<int, int>> *refs = &s.dim_refs;
  if (s.specialize) {
    fn = specializer_->specialize(*s.node, ins, outs);
    refs = nullptr;  // specialized kernels have constant shapes
  }
  std::vector<void *> bufs;
  std::vector<int64_t> dims;
  std::vector<const Tensor *> all = ins;
  for (auto &o : outs) all.push_back(o.defined() ? &o : nullptr);
  for (const Tensor *t : all) {
    if (t) bufs.push_back(const_cast<void *>(t->data()));
  }
  if (refs) {
    for (auto [op, axis] : *refs) dims.push_back(all[op]->shape()[axis]);
    for (size_t i = 0; i < all.size() && i < s.operand_shapes.size(); ++i) {
      if (!all[i]) continue;
      const Shape &want = s.operand_shapes[i];
      bool ok = want.size() == all[i]->shape().size();
      for (size_t a = 0; ok && a < want.size(); ++a) ok = !want[a].is_const() || want[a].value() == all[i]->shape()[a];
      internal_assert(ok) << s.node->describe() << ": operand " << i << " has shape " << shape_str(all[i]->shape())
                          << " at run time but " << shape_str(want) << " at compile time";
    }
  }
  fn(bufs.data(), dims.data());
}

void GraphRunner::run_control(const Step &s, Env &env) const {
  const Node &n = *s.node;
  std::vector<const Tensor *> ins;
  for (Value *v : n.inputs) {
    const Tensor *t = v ? env.find(v) : nullptr;
    if (v && !t && v->constant) t = &*v->constant;
    ins.push_back(t);
  }
  ControlContext c{n, ins, std::vector<Tensor>(n.outputs.size()), env,
                   [&](const std::string &attr) -> const GraphRunner & {
                     auto it = s.subgraphs.find(attr);
                     internal_assert(it != s.subgraphs.end()) << n.describe() << ": no subgraph '" << attr << "'";
                     return *it->second.at(0);
                   }};
  run_control_op(c);
  for (size_t i = 0; i < n.outputs.size(); ++i) {
    if (n.outputs[i]) env.vals[n.outputs[i]] = std::move(c.out[i]);
  }
}

}  // namespace kiln
