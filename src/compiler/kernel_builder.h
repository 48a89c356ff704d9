// Builds the Loop IR kernel of one node from its operands' dtypes, shapes and known
// values: constant dims become literals, symbolic dims become runtime `dims` parameters.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "graph/graph.h"
#include "loop/kernel.h"
#include "lower/lower.h"

namespace kiln {

struct OperandDesc {
  DType dtype = DType::Undefined;  // Undefined: omitted optional operand
  Shape shape;
  const Tensor *value = nullptr;
};

struct KernelSpec {
  Kernel kernel;
  // For each entry of kernel.dims: (operand index in inputs-then-outputs, axis).
  std::vector<std::pair<int, int>> dim_refs;
};

// Returns nullopt when the lowering needs an input's contents that `ins` lacks
// (`needed` then names that input).
std::optional<KernelSpec> build_kernel(const Node &n, const std::vector<OperandDesc> &ins,
                                       const std::vector<OperandDesc> &outs, const std::string &name,
                                       const LowerOptions &opts, int *needed = nullptr);

}  // namespace kiln
