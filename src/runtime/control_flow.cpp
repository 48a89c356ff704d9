#include "runtime/control_flow.h"

#include <cstring>

#include "support/error.h"

namespace kiln {

namespace {

// Copies `count` elements from src[src_off..] to dst[dst_off..] (same dtype).
void copy_elems(const Tensor &src, int64_t src_off, Tensor &dst, int64_t dst_off, int64_t count) {
  if (count == 0) return;
  if (src.dtype() == DType::String) {
    for (int64_t i = 0; i < count; ++i) dst.strings()[dst_off + i] = src.strings()[src_off + i];
    return;
  }
  size_t es = dtype_size(src.dtype());
  std::memcpy(static_cast<char *>(dst.data()) + dst_off * es, static_cast<const char *>(src.data()) + src_off * es,
              count * es);
}

// Product of dims [from, to) of `shape`.
int64_t span(const std::vector<int64_t> &shape, int from, int to) {
  int64_t n = 1;
  for (int i = from; i < to; ++i) n *= shape[i];
  return n;
}

// Slice `index` of `t` along `axis`, with that axis removed.
Tensor take(const Tensor &t, int axis, int64_t index) {
  std::vector<int64_t> shape = t.shape();
  int64_t outer = span(shape, 0, axis), len = shape[axis], inner = span(shape, axis + 1, t.rank());
  shape.erase(shape.begin() + axis);
  Tensor r(t.dtype(), shape);
  for (int64_t o = 0; o < outer; ++o) copy_elems(t, (o * len + index) * inner, r, o * inner, inner);
  return r;
}

// Writes `part` (shape of `whole` without `axis`) into slice `index` of `whole` along `axis`.
void put(Tensor &whole, int axis, int64_t index, const Tensor &part, const Node &n) {
  std::vector<int64_t> want = whole.shape();
  want.erase(want.begin() + axis);
  user_assert(part.dtype() == whole.dtype() && part.shape() == want)
      << n.describe() << ": the body produced a scan output of " << dtype_name(part.dtype()) << " "
      << shape_str(part.shape()) << " where earlier iterations produced " << dtype_name(whole.dtype()) << " "
      << shape_str(want);
  int64_t outer = span(whole.shape(), 0, axis), len = whole.shape()[axis];
  int64_t inner = span(whole.shape(), axis + 1, whole.rank());
  for (int64_t o = 0; o < outer; ++o) copy_elems(part, o * inner, whole, (o * len + index) * inner, inner);
}

// The scan output of zero iterations: empty along `axis`, other dims from the body
// output's declared shape where that is static (else a 1-D empty tensor).
Tensor empty_scan(const GraphRunner &body, size_t out, int64_t axis, const Node &n) {
  const auto &outs = body.graph().outputs;
  const Value *v = out < outs.size() ? outs[out] : nullptr;
  DType t = v && v->dtype != DType::Undefined ? v->dtype : DType::F32;
  if (!v || !v->has_shape || !shape_is_const(v->shape)) return Tensor(t, {0});
  std::vector<int64_t> shape = shape_values(v->shape);
  int a = normalize_axis(axis, static_cast<int>(shape.size()) + 1, n);
  shape.insert(shape.begin() + a, 0);
  return Tensor(t, shape);
}

// Stacks per-iteration values along a new axis 0; `parts` must not be empty.
Tensor stack(const std::vector<Tensor> &parts, const Node &n) {
  std::vector<int64_t> shape = parts[0].shape();
  shape.insert(shape.begin(), static_cast<int64_t>(parts.size()));
  Tensor r(parts[0].dtype(), shape);
  for (size_t i = 0; i < parts.size(); ++i) put(r, 0, static_cast<int64_t>(i), parts[i], n);
  return r;
}

bool truth(const Tensor &t, const Node &n, const char *what) {
  user_assert(t.numel() == 1) << n.describe() << ": " << what << " must have one element, got " << shape_str(t.shape());
  return t.get_i64(0) != 0;
}

Tensor bool_scalar(bool v) {
  Tensor t(DType::Bool, {});
  *t.as<uint8_t>() = v ? 1 : 0;
  return t;
}

// Runs a loop body after checking its inputs against the body's declared types: its
// kernels may have been compiled for the declared static dims. A value whose element
// count matches a differently ranked declaration (a scalar declared [1]) is viewed in
// the declared shape.
std::vector<Tensor> run_body(const GraphRunner &body, std::vector<Tensor> ins, const ControlContext &c) {
  const auto &decl = body.graph().inputs;
  for (size_t i = 0; i < ins.size() && i < decl.size(); ++i) {
    const Value *v = decl[i];
    Tensor &t = ins[i];
    user_assert(v->dtype == DType::Undefined || v->dtype == t.dtype())
        << c.node.describe() << ": body input '" << v->name << "' is declared " << dtype_name(v->dtype) << ", got "
        << dtype_name(t.dtype());
    if (!v->has_shape) continue;
    bool fits = v->shape.size() == t.shape().size();
    for (size_t a = 0; fits && a < v->shape.size(); ++a) {
      fits = !v->shape[a].is_const() || v->shape[a].value() == t.shape()[a];
    }
    if (fits) continue;
    user_assert(shape_is_const(v->shape) && shape_numel(shape_values(v->shape)) == t.numel())
        << c.node.describe() << ": body input '" << v->name << "' is declared " << shape_str(v->shape) << ", got "
        << shape_str(t.shape());
    t = t.reshaped(shape_values(v->shape));
  }
  return body.run(ins, &c.env);
}

void run_if(ControlContext &c) {
  const Tensor *cond = c.in.at(0);
  user_assert(cond) << c.node.describe() << ": missing condition";
  const GraphRunner &g = c.body(truth(*cond, c.node, "condition") ? "then_branch" : "else_branch");
  std::vector<Tensor> outs = g.run({}, &c.env);
  user_assert(outs.size() == c.out.size())
      << c.node.describe() << ": branch returned " << outs.size() << " outputs, expected " << c.out.size();
  c.out = std::move(outs);
}

// Inputs (M, cond, v_initial...); body (iteration_num, cond, v...) -> (cond, v..., scan...);
// outputs (v_final..., scan outputs stacked along a new axis 0).
void run_loop(ControlContext &c) {
  const Node &n = c.node;
  const GraphRunner &body = c.body("body");
  size_t carried = c.in.size() < 2 ? 0 : c.in.size() - 2;
  size_t body_outs = body.graph().outputs.size();
  user_assert(body.graph().inputs.size() == carried + 2)
      << n.describe() << ": the body takes " << body.graph().inputs.size() << " inputs, expected " << carried + 2;
  user_assert(body_outs >= carried + 1) << n.describe() << ": the body returns " << body_outs
                                        << " outputs, expected at least " << carried + 1;
  size_t scans = body_outs - 1 - carried;
  user_assert(c.out.size() <= carried + scans)
      << n.describe() << ": has " << c.out.size() << " outputs, the body gives " << carried + scans;
  const Tensor *m = c.in.size() > 0 ? c.in[0] : nullptr;
  const Tensor *cond_in = c.in.size() > 1 ? c.in[1] : nullptr;
  user_assert(m || cond_in) << n.describe() << ": neither a trip count nor a condition: the loop would never end";
  int64_t trips = -1;
  if (m) {
    user_assert(m->numel() == 1) << n.describe() << ": trip count must have one element";
    trips = m->get_i64(0);
  }
  bool cond = cond_in ? truth(*cond_in, n, "condition") : true;
  std::vector<Tensor> state;
  for (size_t i = 0; i < carried; ++i) {
    user_assert(c.in[2 + i]) << n.describe() << ": loop-carried input " << i << " is missing";
    state.push_back(*c.in[2 + i]);
  }
  std::vector<std::vector<Tensor>> scan_parts(scans);
  for (int64_t it = 0; (trips < 0 || it < trips) && cond; ++it) {
    std::vector<Tensor> ins = {Tensor::from_i64({it}, {}), bool_scalar(cond)};
    ins.insert(ins.end(), state.begin(), state.end());
    std::vector<Tensor> outs = run_body(body, std::move(ins), c);
    // Without a condition input the loop is a plain for loop; the body's cond is ignored.
    if (cond_in) cond = truth(outs[0], n, "the body's condition output");
    for (size_t i = 0; i < carried; ++i) state[i] = std::move(outs[1 + i]);
    for (size_t k = 0; k < scans; ++k) scan_parts[k].push_back(std::move(outs[1 + carried + k]));
  }
  for (size_t i = 0; i < c.out.size(); ++i) {
    if (i < carried) {
      c.out[i] = state[i];
    } else {
      size_t k = i - carried;
      c.out[i] = scan_parts[k].empty() ? empty_scan(body, 1 + carried + k, 0, n) : stack(scan_parts[k], n);
    }
  }
}

struct ScanAxes {
  std::vector<int64_t> in_axes, in_dirs, out_axes, out_dirs;
};

// Runs a Scan (opset 9 form) over `states` and `inputs`; `steps` limits the iterations
// (opset 8 sequence_lens). Scan outputs have `total` positions along their axis; ones
// past `steps` stay zero.
std::vector<Tensor> scan_once(ControlContext &c, const ScanAxes &ax, std::vector<Tensor> states,
                              const std::vector<Tensor> &inputs, int64_t steps, int64_t total) {
  const Node &n = c.node;
  const GraphRunner &body = c.body("body");
  size_t ns = states.size(), ni = inputs.size();
  size_t body_outs = body.graph().outputs.size();
  user_assert(body.graph().inputs.size() == ns + ni)
      << n.describe() << ": the body takes " << body.graph().inputs.size() << " inputs, expected " << ns + ni;
  user_assert(body_outs >= ns) << n.describe() << ": the body returns too few outputs";
  size_t nout = body_outs - ns;
  std::vector<int> in_axes(ni);
  for (size_t k = 0; k < ni; ++k) {
    in_axes[k] = normalize_axis(k < ax.in_axes.size() ? ax.in_axes[k] : 0, inputs[k].rank(), n);
    user_assert(inputs[k].rank() > 0) << n.describe() << ": scan input " << k << " is a scalar";
  }
  std::vector<Tensor> outs(nout);
  for (int64_t it = 0; it < steps; ++it) {
    std::vector<Tensor> ins = states;
    for (size_t k = 0; k < ni; ++k) {
      bool rev = k < ax.in_dirs.size() && ax.in_dirs[k] != 0;
      ins.push_back(take(inputs[k], in_axes[k], rev ? steps - 1 - it : it));
    }
    std::vector<Tensor> r = run_body(body, std::move(ins), c);
    for (size_t i = 0; i < ns; ++i) states[i] = std::move(r[i]);
    for (size_t k = 0; k < nout; ++k) {
      const Tensor &part = r[ns + k];
      int rank = part.rank() + 1;
      int a = normalize_axis(k < ax.out_axes.size() ? ax.out_axes[k] : 0, rank, n);
      if (it == 0) {
        std::vector<int64_t> shape = part.shape();
        shape.insert(shape.begin() + a, total);
        outs[k] = Tensor(part.dtype(), shape);
      }
      bool rev = k < ax.out_dirs.size() && ax.out_dirs[k] != 0;
      put(outs[k], a, rev ? steps - 1 - it : it, part, n);
    }
  }
  for (size_t k = 0; k < nout && steps == 0; ++k) {
    if (total == 0) {
      outs[k] = empty_scan(body, ns + k, k < ax.out_axes.size() ? ax.out_axes[k] : 0, n);
    } else {
      // Opset 8 entries of length 0 among longer ones: zeros of the declared shape.
      Tensor e = empty_scan(body, ns + k, 0, n);
      std::vector<int64_t> shape = e.shape();
      shape[0] = total;
      outs[k] = Tensor(e.dtype(), shape);
    }
  }
  states.insert(states.end(), outs.begin(), outs.end());
  return states;
}

int64_t scan_length(const std::vector<Tensor> &inputs, const ScanAxes &ax, const Node &n) {
  int64_t len = -1;
  for (size_t k = 0; k < inputs.size(); ++k) {
    int a = normalize_axis(k < ax.in_axes.size() ? ax.in_axes[k] : 0, inputs[k].rank(), n);
    int64_t l = inputs[k].shape()[a];
    user_assert(len < 0 || l == len) << n.describe() << ": scan inputs have different lengths (" << len << " and " << l
                                     << ")";
    len = l;
  }
  user_assert(len >= 0) << n.describe() << ": needs at least one scan input";
  return len;
}

void run_scan(ControlContext &c) {
  const Node &n = c.node;
  int64_t m = n.attr_i("num_scan_inputs", -1);
  user_assert(m >= 1) << n.describe() << ": num_scan_inputs must be at least 1";
  bool v8 = n.opset > 0 && n.opset < 9;
  size_t first = v8 ? 1 : 0;
  user_assert(c.in.size() >= first + m) << n.describe() << ": has fewer inputs than num_scan_inputs";
  size_t ns = c.in.size() - first - m;
  std::vector<Tensor> states, inputs;
  for (size_t i = first; i < c.in.size(); ++i) {
    user_assert(c.in[i]) << n.describe() << ": input " << i << " is missing";
    (i < first + ns ? states : inputs).push_back(*c.in[i]);
  }
  ScanAxes ax;
  if (!v8) {
    ax.in_axes = n.attr_ints("scan_input_axes");
    ax.in_dirs = n.attr_ints("scan_input_directions");
    ax.out_axes = n.attr_ints("scan_output_axes");
    ax.out_dirs = n.attr_ints("scan_output_directions");
    int64_t len = scan_length(inputs, ax, n);
    std::vector<Tensor> r = scan_once(c, ax, states, inputs, len, len);
    for (size_t i = 0; i < c.out.size() && i < r.size(); ++i) c.out[i] = std::move(r[i]);
    return;
  }
  // Opset 8: every input has a leading batch axis; scanning runs along axis 1 (axis 0
  // once the batch slice is taken), sequence_lens limits each batch entry.
  ax.in_dirs = n.attr_ints("directions");
  int64_t batch = -1;
  for (auto &t : states) batch = t.rank() ? t.shape()[0] : batch;
  for (auto &t : inputs) {
    user_assert(t.rank() >= 2) << n.describe() << ": scan inputs need batch and sequence axes";
    user_assert(batch < 0 || t.shape()[0] == batch) << n.describe() << ": inputs have different batch sizes";
    batch = t.shape()[0];
  }
  int64_t total = inputs[0].shape()[1];
  const Tensor *lens = c.in[0];
  std::vector<std::vector<Tensor>> per_output(c.out.size());
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<Tensor> s, x;
    for (auto &t : states) s.push_back(take(t, 0, b));
    for (auto &t : inputs) x.push_back(take(t, 0, b));
    int64_t steps = scan_length(x, ax, n);
    if (lens) {
      user_assert(lens->numel() == batch) << n.describe() << ": sequence_lens must have one entry per batch";
      steps = lens->get_i64(b);
      user_assert(steps >= 0 && steps <= total)
          << n.describe() << ": sequence length " << steps << " is out of range [0, " << total << "]";
    }
    std::vector<Tensor> r = scan_once(c, ax, s, x, steps, total);
    for (size_t i = 0; i < per_output.size() && i < r.size(); ++i) per_output[i].push_back(std::move(r[i]));
  }
  for (size_t i = 0; i < c.out.size(); ++i) {
    c.out[i] = per_output[i].empty() ? Tensor(DType::F32, {0}) : stack(per_output[i], n);
  }
}

}  // namespace

void run_control_op(ControlContext &c) {
  switch (c.node.kind) {
    case OpKind::If:
      run_if(c);
      return;
    case OpKind::Loop:
      run_loop(c);
      return;
    case OpKind::Scan:
      run_scan(c);
      return;
    default:
      user_error << c.node.describe() << ": control-flow op not supported yet";
  }
}

}  // namespace kiln
