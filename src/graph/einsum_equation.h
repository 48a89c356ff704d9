// The parsed form of an Einsum equation ("bij,bjk->bik", "...ii->...i", "i,i"), shared by
// shape inference and lowering. Every axis of every operand gets a label: letters map to
// 0..51, and the broadcast ellipsis dims to kEllipsis + t (t-th of the ellipsis dims,
// right-aligned across operands as numpy broadcasting does).
#pragma once
#include <string>
#include <vector>

#include "graph/graph.h"

namespace kiln {

struct EinsumEquation {
  static constexpr int kEllipsis = 52;
  std::vector<std::vector<int>> inputs;  // label of each axis of each input
  std::vector<int> output;               // label of each output axis
  std::vector<int> summed;               // labels reduced over (not in the output)
  int ellipsis_rank = 0;                 // number of broadcast ellipsis dims

  // Parses `equation` for inputs of the given ranks; user_error on a malformed equation.
  // Without "->", the output is the ellipsis dims then the letters used exactly once, in
  // alphabetical order (numpy's implicit mode).
  static EinsumEquation parse(const std::string &equation, const std::vector<int> &ranks, const Node &n);
};

}  // namespace kiln
