// The op kinds kiln knows, generated from ops.def.
#pragma once
#include <string>

namespace kiln {

// Fusion classes (TVM's taxonomy); graph fusion follows from them.
enum class FusionPattern { Elementwise, Broadcast, Injective, Reduction, OutFusable, Opaque };

// How an op executes: code generated from a Loop IR compute definition, a runtime C++
// kernel (non-affine ops), or control flow run by the executor over subgraphs.
enum class ExecPath { Codegen, Runtime, Control };

enum class OpKind {
  Unknown,
#define KILN_OP(name, pattern, shape_fn, lower_fn) name,
#define KILN_RUNTIME_OP(name, shape_fn, run_fn) name,
#define KILN_CONTROL_OP(name) name,
#include "graph/ops.def"
#undef KILN_OP
#undef KILN_RUNTIME_OP
#undef KILN_CONTROL_OP
  Count
};

const char *op_name(OpKind k);
FusionPattern op_pattern(OpKind k);
ExecPath op_path(OpKind k);
const char *exec_path_name(ExecPath p);
const char *fusion_pattern_name(FusionPattern p);
// Ops that only kiln's passes create (FusedConv, ...); models cannot name them.
bool is_kiln_internal_op(OpKind k);
// Maps an ONNX op_type of the default domain to a kind; Unknown if unsupported.
OpKind op_kind_from_name(const std::string &op_type);

}  // namespace kiln
