// Static facts about a graph for `kiln inspect`: parameter count, FLOPs, op histogram.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace kiln {

struct OpCount {
  std::string op;
  size_t count = 0;
  ExecPath path = ExecPath::Codegen;
};

struct ModelStats {
  int64_t parameters = 0;        // elements of all float/int constants
  int64_t parameter_bytes = 0;
  double flops = 0;              // multiply-add counted as 2
  bool flops_symbolic = false;   // true when symbolic dims were taken as 1
  std::vector<OpCount> ops;      // sorted by count, descending
};

// FLOPs with every symbolic dim evaluated at 1 unless bound in `symbols`.
ModelStats compute_stats(const Graph &g, const std::map<std::string, int64_t> &symbols = {});

}  // namespace kiln
