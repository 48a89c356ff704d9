#include "compiler/kernel_table.h"

#include "codegen/jit.h"
#include "support/error.h"

namespace kiln {

namespace {

OperandDesc desc_of(const Value *v) {
  OperandDesc d;
  if (!v) return d;
  d.dtype = v->dtype;
  d.shape = v->shape;
  d.value = v->constant ? &*v->constant : nullptr;
  return d;
}

OperandDesc desc_of(const Tensor *t, bool with_value) {
  OperandDesc d;
  if (!t) return d;
  d.dtype = t->dtype();
  d.shape = shape_from(t->shape());
  d.value = with_value ? t : nullptr;
  return d;
}

std::string kernel_key(const Kernel &k) {
  Kernel copy = k;
  copy.name = "_";
  return to_string(copy);
}

}  // namespace

void build_kernel_table(const Graph &g, const LowerOptions &opts, std::vector<Kernel> &kernels,
                        std::map<std::string, std::string> &dedup, KernelTable &table) {
  for (auto &np : g.nodes) {
    const Node &n = *np;
    for (auto &[name, a] : n.attrs) {
      for (auto &sub : a.graphs) build_kernel_table(*sub, opts, kernels, dedup, table);
    }
    if (op_path(n.kind) != ExecPath::Codegen || node_uses_strings(n)) continue;
    bool known = true;
    std::vector<OperandDesc> ins, outs;
    for (Value *v : n.inputs) {
      ins.push_back(desc_of(v));
      if (v && (!v->has_shape || v->dtype == DType::Undefined)) known = false;
    }
    for (Value *v : n.outputs) {
      outs.push_back(desc_of(v));
      if (v && (!v->has_shape || v->dtype == DType::Undefined)) known = false;
    }
    if (!known) continue;
    std::string name = "k";
    name += std::to_string(kernels.size()) + "_" + op_name(n.kind);
    std::optional<KernelSpec> spec = build_kernel(n, ins, outs, name, opts);
    if (!spec) continue;
    StepKernel &sk = table[&n];
    std::string key = kernel_key(spec->kernel);
    auto it = dedup.find(key);
    if (it == dedup.end()) {
      dedup[key] = spec->kernel.name;
      sk.name = spec->kernel.name;
      kernels.push_back(spec->kernel);
    } else {
      sk.name = it->second;
    }
    sk.ir = to_string(spec->kernel);
    sk.dim_refs = spec->dim_refs;
  }
}

KernelFn JitSpecializer::specialize(const Node &n, const std::vector<const Tensor *> &ins,
                                    const std::vector<Tensor> &outs) {
  std::lock_guard<std::mutex> lock(jit_mutex_);
  NodeCache &nc = cache_[&n];
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::string key;
    std::vector<OperandDesc> id, od;
    for (size_t i = 0; i < ins.size(); ++i) {
      bool with = nc.value_inputs.count(static_cast<int>(i)) != 0;
      id.push_back(desc_of(ins[i], with));
      if (ins[i]) {
        key += std::string(dtype_name(ins[i]->dtype())) + shape_str(ins[i]->shape()) + ";";
        if (with) {
          for (int64_t k = 0; k < ins[i]->numel(); ++k) key += std::to_string(ins[i]->get_f64(k)) + ",";
        }
      }
      key += "|";
    }
    for (auto &o : outs) {
      od.push_back(desc_of(o.defined() ? &o : nullptr, false));
      if (o.defined()) key += std::string(dtype_name(o.dtype())) + shape_str(o.shape()) + ";";
    }
    auto it = nc.fns.find(key);
    if (it != nc.fns.end()) return it->second;
    int needed = -1;
    std::string name = "s" + std::to_string(counter_++) + "_" + op_name(n.kind);
    auto spec = build_kernel(n, id, od, name, opts_, &needed);
    if (!spec) {
      internal_assert(needed >= 0 && !nc.value_inputs.count(needed)) << "specialization did not converge";
      nc.value_inputs.insert(needed);
      continue;
    }
    // Specializations are named by a per-process counter: never worth caching on disk.
    JitOptions jo;
    jo.kernel_cache = false;
    auto fns = jit_.compile({spec->kernel}, jo);
    nc.fns[key] = fns.at(name);
    return fns.at(name);
  }
  internal_error << n.describe() << ": could not specialize kernel";
  return nullptr;
}

size_t JitSpecializer::count() const {
  size_t n = 0;
  for (auto &[node, nc] : cache_) n += nc.fns.size();
  return n;
}

}  // namespace kiln
