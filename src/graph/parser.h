// Parses the textual Graph IR printed by graph/printer.h back into a Model.
//
// Values must be defined before they are used: by a graph input, an `init` line or an
// earlier node; a subgraph may also use values of its enclosing graphs defined before the
// node that holds it (the parser sets Graph::parent). Unknown op types parse (with
// OpKind::Unknown) so that any printed graph reads back; verify_graph rejects them.
// The `model {...}` header is optional (opset 0, no producer), so print_graph's output
// parses too. Node::opset is set to the model's opset.
#pragma once
#include <string>

#include "graph/graph.h"

namespace kiln {

// Throws user_error "LINE:COL: message" on malformed text.
Model parse_model(const std::string &text);

}  // namespace kiln
