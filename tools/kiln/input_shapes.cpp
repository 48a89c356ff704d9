#include "input_shapes.h"

namespace kiln {

void pin_given_input_shapes(const Model &m, const std::map<std::string, Tensor> &inputs, CompileOptions &opts) {
  for (const Value *v : m.graph->inputs) {
    auto it = inputs.find(v->name);
    if (it == inputs.end() || opts.input_shapes.count(v->name) || !v->has_shape) continue;
    const Tensor &t = it->second;
    bool agrees = t.dtype() == v->dtype && t.rank() == static_cast<int>(v->shape.size());
    for (size_t i = 0; agrees && i < v->shape.size(); ++i) {
      agrees = !v->shape[i].is_const() || v->shape[i].value() == t.shape()[i];
    }
    if (agrees) opts.input_shapes[v->name] = t.shape();
  }
}

}  // namespace kiln
