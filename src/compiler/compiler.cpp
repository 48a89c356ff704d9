#include "compiler/compiler.h"

#include <chrono>
#include <cstring>
#include <iostream>
#include <mutex>

#include "codegen/jit.h"
#include "compiler/kernel_table.h"
#include "runtime/executor.h"
#include "support/error.h"

namespace kiln {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

CompiledModel::CompiledModel() = default;
CompiledModel::~CompiledModel() = default;

std::unique_ptr<CompiledModel> CompiledModel::compile(Model model, const CompileOptions &opts) {
  std::unique_ptr<CompiledModel> cm(new CompiledModel());
  cm->model_ = std::move(model);
  cm->jit_ = std::make_unique<Jit>(opts.target, opts.kernel_cache);
  cm->jit_mutex_ = std::make_unique<std::mutex>();
  LowerOptions lopts;
  lopts.opt_level = opts.opt_level;
  lopts.vector_bits = cm->jit_->vector_bits();
  lopts.vector_registers = cm->jit_->vector_registers();
  auto t0 = std::chrono::steady_clock::now();
  run_pipeline(cm->model_, opts, *cm->jit_, lopts, cm->stats_);
  cm->stats_.seconds_passes = seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  cm->specializer_ = std::make_unique<JitSpecializer>(*cm->jit_, *cm->jit_mutex_, lopts);
  cm->runner_ = std::make_unique<GraphRunner>(*cm->model_.graph, cm->specializer_.get());
  std::vector<Kernel> kernels;
  std::map<std::string, std::string> dedup;
  build_kernel_table(*cm->model_.graph, lopts, kernels, dedup, cm->kernels_);
  cm->stats_.seconds_lower = seconds_since(t0);
  cm->stats_.kernels = kernels.size();
  if (opts.progress) std::cerr << "[kiln] lowered " << kernels.size() << " distinct kernels; compiling with LLVM\n";

  t0 = std::chrono::steady_clock::now();
  auto fns = cm->jit_->compile(kernels);
  cm->runner_->bind(cm->kernels_, [&](const std::string &name) {
    auto it = fns.find(name);
    internal_assert(it != fns.end()) << "kernel " << name << " was not compiled";
    return it->second;
  });
  cm->stats_.seconds_llvm = seconds_since(t0);
  cm->stats_.kernel_cache_hits = cm->jit_->cache_stats().hits;
  cm->stats_.kernel_cache_misses = cm->jit_->cache_stats().misses;
  if (opts.progress) std::cerr << "[kiln] LLVM done in " << cm->stats_.seconds_llvm << " s\n";
  return cm;
}

std::vector<Tensor> CompiledModel::run(const std::map<std::string, Tensor> &inputs) const {
  if (stats_.batch_split > 1) return run_split(inputs);
  return runner_->run(order_inputs(*model_.graph, inputs), nullptr);
}

namespace {
void check_batch(const std::map<std::string, Tensor> &inputs, int64_t n) {
  for (auto &[name, t] : inputs) {
    user_assert(t.rank() >= 1 && t.shape()[0] == n)
        << "input '" << name << "' has shape " << shape_str(t.shape()) << ", the model was compiled for a batch of "
        << n << " on dim 0";
  }
}
}  // namespace

Shape CompiledModel::caller_shape(const Value &v) const {
  Shape s = v.shape;
  if (stats_.batch_split > 1 && !s.empty()) s[0] = Dim(stats_.batch_split);
  return s;
}

std::vector<Tensor> CompiledModel::run_split(const std::map<std::string, Tensor> &inputs) const {
  const int64_t n = stats_.batch_split;
  check_batch(inputs, n);
  if (stats_.split_prefix_nodes) {
    // The runner runs the nodes before the SampleGather per sample and the rest on the
    // batch; the inputs' samples are checked here against the one-sample graph.
    std::map<std::string, Tensor> first;
    for (auto &[name, t] : inputs) first.emplace(name, sample_of(t, 0, n));
    std::vector<Tensor> ordered = order_inputs(*model_.graph, first);
    for (size_t i = 0; i < ordered.size(); ++i) ordered[i] = inputs.at(model_.graph->inputs[i]->name);
    return runner_->run(ordered, nullptr);
  }
  std::vector<Tensor> outs;
  for (int64_t i = 0; i < n; ++i) {
    std::map<std::string, Tensor> one;
    for (auto &[name, t] : inputs) one.emplace(name, sample_of(t, i, n));
    std::vector<Tensor> r = runner_->run(order_inputs(*model_.graph, one), nullptr);
    if (i == 0) {
      for (const Tensor &o : r) {
        internal_assert(o.rank() >= 1 && o.shape()[0] == 1) << "split batch: an output of one sample has shape "
                                                           << shape_str(o.shape());
        std::vector<int64_t> shape = o.shape();
        shape[0] = n;
        outs.emplace_back(o.dtype(), shape);
      }
    }
    for (size_t k = 0; k < r.size(); ++k) {
      internal_assert(r[k].nbytes() * static_cast<size_t>(n) == outs[k].nbytes())
          << "split batch: output " << k << " changed shape between samples";
      std::memcpy(static_cast<char *>(outs[k].data()) + r[k].nbytes() * i, r[k].data(), r[k].nbytes());
    }
  }
  return outs;
}

std::optional<MemoryPlan> CompiledModel::static_memory_plan() const { return runner_->static_memory_plan(); }

void CompiledModel::set_profiling(bool on) const { runner_->set_profiling(on); }

std::vector<std::pair<const Node *, double>> CompiledModel::profile_ms() const {
  std::vector<std::pair<const Node *, double>> out;
  for (auto &t : runner_->profile()) out.emplace_back(t.node, t.ms);
  return out;
}

namespace {
void collect_ir(const Graph &g, const KernelTable &table, std::vector<std::string> &out) {
  for (auto &n : g.nodes) {
    for (auto &[name, a] : n->attrs) {
      for (auto &sub : a.graphs) collect_ir(*sub, table, out);
    }
    auto it = table.find(n.get());
    if (it != table.end()) out.push_back("// " + n->describe() + "\n" + it->second.ir);
  }
}
}  // namespace

std::vector<std::string> CompiledModel::kernel_ir() const {
  std::vector<std::string> out;
  collect_ir(*model_.graph, kernels_, out);
  return out;
}

size_t CompiledModel::specialized_count() const { return specializer_->count(); }

std::vector<std::vector<Tensor>> evaluate_nodes(const std::vector<const Node *> &nodes,
                                                const std::vector<std::vector<Tensor>> &inputs, Jit &jit) {
  static int counter = 0;
  std::vector<std::vector<Tensor>> outs(nodes.size());
  std::vector<Kernel> kernels;
  std::vector<std::string> names;
  for (size_t k = 0; k < nodes.size(); ++k) {
    const Node &n = *nodes[k];
    std::vector<const Tensor *> ins;
    for (auto &t : inputs[k]) ins.push_back(t.defined() ? &t : nullptr);
    std::vector<ValueInfo> shapes = concrete_shapes(n, ins);
    std::vector<OperandDesc> id, od;
    for (auto *t : ins) {
      OperandDesc d;
      if (t) {
        d.dtype = t->dtype();
        d.shape = shape_from(t->shape());
        d.value = t;
      }
      id.push_back(d);
    }
    outs[k].resize(n.outputs.size());
    for (size_t i = 0; i < outs[k].size(); ++i) {
      OperandDesc d;
      if (n.outputs[i] && shapes[i].dtype != DType::Undefined) {
        outs[k][i] = Tensor(shapes[i].dtype, shape_values(shapes[i].shape));
        d.dtype = outs[k][i].dtype();
        d.shape = shapes[i].shape;
      }
      od.push_back(d);
    }
    names.push_back("fold" + std::to_string(counter++) + "_" + op_name(n.kind));
    auto spec = build_kernel(n, id, od, names.back(), LowerOptions{});
    internal_assert(spec) << "constant folding of " << n.describe() << " needs values it was given";
    kernels.push_back(spec->kernel);
  }
  auto fns = jit.compile(kernels);
  for (size_t k = 0; k < nodes.size(); ++k) {
    std::vector<void *> bufs;
    for (auto &t : inputs[k]) {
      if (t.defined()) bufs.push_back(const_cast<void *>(t.data()));
    }
    for (auto &o : outs[k]) {
      if (o.defined()) bufs.push_back(o.data());
    }
    fns.at(names[k])(bufs.data(), nullptr);
  }
  return outs;
}

}  // namespace kiln
