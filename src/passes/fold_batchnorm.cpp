// Conv -> BatchNormalization (inference, constant parameters) becomes one Conv:
//   s = scale / sqrt(var + eps);  W'[oc] = W[oc] * s[oc];  b' = (b - mean) * s + beta.
#include <algorithm>
#include <cmath>

#include "passes/passes.h"
#include "passes/rewrite.h"

namespace kiln {

void fold_batchnorm(Graph &g) {
  auto uses = use_counts(g);
  std::vector<const Node *> removed;
  for (auto &bn : g.nodes) {
    if (bn->kind != OpKind::BatchNormalization || bn->attr_i("training_mode", 0) != 0) continue;
    bool extra_outputs = false;
    for (size_t i = 1; i < bn->outputs.size(); ++i) extra_outputs |= bn->outputs[i] && uses[bn->outputs[i]] > 0;
    if (extra_outputs) continue;
    Value *x = bn->input(0);
    Node *conv = x ? x->producer : nullptr;
    if (!conv || conv->kind != OpKind::Conv || sole_consumer(g, uses, x) != bn.get()) continue;
    const Tensor *w = f32_constant(conv->input(1)), *cb = conv->input(2) ? f32_constant(conv->input(2)) : nullptr;
    const Tensor *scale = f32_constant(bn->input(1)), *beta = f32_constant(bn->input(2));
    const Tensor *mean = f32_constant(bn->input(3)), *var = f32_constant(bn->input(4));
    if (!w || (conv->input(2) && !cb) || !scale || !beta || !mean || !var) continue;
    int64_t oc = w->shape()[0];
    if (scale->numel() != oc || beta->numel() != oc || mean->numel() != oc || var->numel() != oc) continue;
    double eps = bn->attr_f("epsilon", 1e-5);
    Tensor nw = w->clone(), nb(DType::F32, {oc});
    int64_t per = w->numel() / oc;
    for (int64_t c = 0; c < oc; ++c) {
      double s = scale->as<float>()[c] / std::sqrt(static_cast<double>(var->as<float>()[c]) + eps);
      for (int64_t i = 0; i < per; ++i) nw.as<float>()[c * per + i] = static_cast<float>(w->as<float>()[c * per + i] * s);
      double b = cb ? cb->as<float>()[c] : 0.0;
      nb.as<float>()[c] = static_cast<float>((b - mean->as<float>()[c]) * s + beta->as<float>()[c]);
    }
    note_fused(*conv, "BatchNormalization");
    conv->inputs.resize(3);
    conv->inputs[1] = add_constant(g, conv->input(1)->name + "_bn", std::move(nw));
    conv->inputs[2] = add_constant(g, bn->output(0)->name + "_bias", std::move(nb));
    // The Conv now produces the BatchNormalization's output.
    Value *y = bn->output(0);
    conv->outputs[0] = y;
    y->producer = conv;
    removed.push_back(bn.get());
  }
  std::erase_if(g.nodes, [&](const std::unique_ptr<Node> &n) {
    return std::find(removed.begin(), removed.end(), n.get()) != removed.end();
  });
}

}  // namespace kiln
