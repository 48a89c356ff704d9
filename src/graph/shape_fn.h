// Shape functions: one per op family (named in ops.def), used both by compile-time shape
// inference (symbolic dims) and by the executor at run time (concrete dims). A shape
// function reads input dtypes/shapes (and values, where known) and fills the outputs.
#pragma once
#include <functional>
#include <optional>
#include <vector>

#include "graph/graph.h"

namespace kiln {

struct ValueInfo {
  DType dtype = DType::Undefined;
  Shape shape;
  bool has_shape = false;
  const Tensor *value = nullptr;                  // contents, when known
  std::optional<std::vector<Dim>> sym_values;     // symbolic contents of a small int tensor
  bool present() const { return dtype != DType::Undefined; }
  int rank() const { return static_cast<int>(shape.size()); }
};

struct ShapeContext {
  const Node &node;
  std::vector<ValueInfo> in;
  std::vector<ValueInfo> out;  // sized to node.outputs; the shape function fills them
  std::function<Dim()> fresh;  // mints a new symbol for a data-dependent dim

  ShapeContext(const Node &n, std::vector<ValueInfo> inputs, std::function<Dim()> fresh_dim);
  bool has(size_t i) const { return i < in.size() && in[i].present(); }
  const ValueInfo &input(size_t i) const;
  // Contents of input i as dims (from its constant value or symbolic contents).
  std::optional<std::vector<Dim>> dim_values(size_t i) const;
  // Contents of input i as ints, only when fully known.
  std::optional<std::vector<int64_t>> int_values(size_t i) const;
  std::optional<std::vector<double>> float_values(size_t i) const;
  void set_output(size_t i, DType t, Shape s);
  // The input's shape, requiring its rank to be known.
  const Shape &shape_of(size_t i) const;
};

using ShapeFn = void (*)(ShapeContext &);

// Looks up the shape function of an op kind (nullptr for control flow).
ShapeFn shape_fn_of(OpKind k);

// Helpers shared by shape functions and lowerings.
Shape broadcast_shapes(const Shape &a, const Shape &b, const Node &n);
int normalize_axis(int64_t axis, int rank, const Node &n);

#define KILN_OP(name, pattern, shape_fn, lower_fn) void shape_fn(ShapeContext &);
#define KILN_RUNTIME_OP(name, shape_fn, run_fn) void shape_fn(ShapeContext &);
#define KILN_CONTROL_OP(name)
#include "graph/ops.def"
#undef KILN_OP
#undef KILN_RUNTIME_OP
#undef KILN_CONTROL_OP

}  // namespace kiln
