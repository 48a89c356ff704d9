// If, Loop and Scan: the executor runs compiled subgraphs.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "runtime/executor.h"

namespace kiln {

struct ControlContext {
  const Node &node;
  std::vector<const Tensor *> in;  // null for omitted optional inputs
  std::vector<Tensor> out;         // to fill
  const Env &env;                  // outer scope for the bodies
  std::function<const GraphRunner &(const std::string &attr)> body;
};

void run_control_op(ControlContext &c);

}  // namespace kiln
