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

// A node that kiln's passes made out of several ONNX ops (attribute fused_ops), with the
// memory traffic it costs fused and what the unfused chain would move: every absorbed
// elementwise op writes and re-reads an output-sized intermediate.
struct FusedGroup {
  std::string node;   // "FusedConv '/layer1/conv1/Conv'"
  std::string ops;    // "Conv+BatchNormalization+Relu"
  double flops = 0;
  double bytes = 0, bytes_unfused = 0;
};

struct ModelStats {
  int64_t parameters = 0;        // elements of all float/int constants
  int64_t parameter_bytes = 0;
  double flops = 0;              // multiply-add counted as 2
  bool flops_symbolic = false;   // true when symbolic dims were taken as 1
  std::vector<OpCount> ops;      // sorted by count, descending
  // Bytes read and written by all nodes (inputs + outputs; top-level graph), and what
  // the same model would move with every fused group split back into its ops.
  double bytes_moved = 0, bytes_moved_unfused = 0;
  std::vector<FusedGroup> groups;
};

// FLOPs with every symbolic dim evaluated at 1 unless bound in `symbols`. The first
// `repeated` nodes count `times` times (a split batch's per-sample nodes).
ModelStats compute_stats(const Graph &g, const std::map<std::string, int64_t> &symbols = {}, size_t repeated = 0,
                         double times = 1);

}  // namespace kiln
