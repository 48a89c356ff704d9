#include "graph/op_kind.h"

#include <map>

namespace kiln {

namespace {
struct OpInfo {
  const char *name;
  FusionPattern pattern;
  ExecPath path;
};
const OpInfo kOps[] = {
    {"Unknown", FusionPattern::Opaque, ExecPath::Runtime},
#define KILN_OP(name, pattern, shape_fn, lower_fn) {#name, FusionPattern::pattern, ExecPath::Codegen},
#define KILN_RUNTIME_OP(name, shape_fn, run_fn) {#name, FusionPattern::Opaque, ExecPath::Runtime},
#define KILN_CONTROL_OP(name) {#name, FusionPattern::Opaque, ExecPath::Control},
#include "graph/ops.def"
#undef KILN_OP
#undef KILN_RUNTIME_OP
#undef KILN_CONTROL_OP
};
}  // namespace

const char *op_name(OpKind k) { return kOps[static_cast<int>(k)].name; }
FusionPattern op_pattern(OpKind k) { return kOps[static_cast<int>(k)].pattern; }
ExecPath op_path(OpKind k) { return kOps[static_cast<int>(k)].path; }

const char *exec_path_name(ExecPath p) {
  switch (p) {
    case ExecPath::Codegen: return "codegen";
    case ExecPath::Runtime: return "runtime-kernel";
    case ExecPath::Control: return "control-flow";
  }
  return "?";
}

const char *fusion_pattern_name(FusionPattern p) {
  switch (p) {
    case FusionPattern::Elementwise: return "elementwise";
    case FusionPattern::Broadcast: return "broadcast";
    case FusionPattern::Injective: return "injective";
    case FusionPattern::Reduction: return "reduction";
    case FusionPattern::OutFusable: return "out-fusable";
    case FusionPattern::Opaque: return "opaque";
  }
  return "?";
}

bool is_kiln_internal_op(OpKind k) {
  return k == OpKind::FusedConv || k == OpKind::FusedMatMul || k == OpKind::WinogradConv ||
         k == OpKind::FusedAttention || k == OpKind::FusedElementwise || k == OpKind::ToBlocked ||
         k == OpKind::FromBlocked || k == OpKind::BlockedConv || k == OpKind::BlockedGlobalAveragePool;
}

OpKind op_kind_from_name(const std::string &op_type) {
  static const std::map<std::string, OpKind> table = [] {
    std::map<std::string, OpKind> m;
    for (int i = 1; i < static_cast<int>(OpKind::Count); ++i) m[kOps[i].name] = static_cast<OpKind>(i);
    return m;
  }();
  auto it = table.find(op_type);
  return it == table.end() ? OpKind::Unknown : it->second;
}

}  // namespace kiln
