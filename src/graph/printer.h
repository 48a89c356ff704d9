// The textual form of the Graph IR. It reads like the IR itself and parses back exactly
// (graph/parser.h): print_model(parse_model(print_model(m))) == print_model(m), and every
// constant, attribute and symbolic shape survives the round trip bit for bit.
//
//   model {opset = 17, producer = "pytorch"}
//   graph main(%x: f32[batch, 3, 224, 224]) {
//     init %w: f32[64, 3, 7, 7] = hex"0000803f..."
//     init %b: f32[2] = [0.5, -1]
//     %y: f32[batch, 64, 112, 112] = Conv(%x, %w, _) @conv1 {kernel_shape = [7, 7]}
//     %z: f32[?] = Relu(%y)
//     return %z
//   }
//
// Values are `%name` (quoted, `%"onnx::Conv_1"`, when the name has characters beyond
// [A-Za-z0-9_.]); `_` is an omitted optional input or output; a type is `dtype[dims]`
// with `?` for an unknown dtype and `[?]` for an unknown rank. A node is
// `outputs = [domain::]Op[<Kind>](inputs) [@name] [{attributes}]`, where `<Kind>` appears
// only when the op kind is not the one its op_type names. Subgraphs print as nested
// `graph name(...) { ... }` blocks and may use outer values by name. `#` starts a comment.
#pragma once
#include <cstddef>
#include <string>

#include "graph/graph.h"

namespace kiln {

struct PrintOptions {
  // Print every constant as a list of elements, however large (readable, still exact).
  bool show_constants_data = false;
  // Constants with more elements than this print as a hex blob of their raw bytes.
  size_t max_elements = 16;
  // For display only (`kiln inspect --ir`): large constants print as `<N elements>`,
  // which the parser refuses.
  bool elide_large_constants = false;
};

std::string print_graph(const Graph &g, const PrintOptions &opts = {});
std::string print_model(const Model &m, const PrintOptions &opts = {});
// One node as it appears in a graph (several lines when it holds subgraphs).
std::string print_node(const Node &n, const PrintOptions &opts = {});
// `%name` as printed in the IR; `_` for null.
std::string value_ref(const Value *v);

}  // namespace kiln
