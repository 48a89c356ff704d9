// ONNX import: a ModelProto becomes a Model holding Graph IR.
//
// Post-conditions of a successful import:
//  - every node's op kind is known (ops.def); the default-domain opset is 1..17 (0 only for
//    a model without default-domain nodes that imports none) and recorded in
//    Model::opset and every Node::opset; Node::domain is "" for the default domain;
//  - initializers and the outputs of Constant nodes (which create no Node) are Values with
//    `constant` set (dtype, concrete shape, has_shape), no producer, listed in
//    Graph::initializers; graph inputs that have an initializer are initializers, not
//    runtime inputs;
//  - graph inputs carry dtype and symbolic shape (dim_param -> Dim::sym(name), an unnamed
//    unknown dim -> a fresh symbol "unk__N"); graph.value_info and typed graph outputs
//    pre-fill dtype/shape of node outputs;
//  - Graph::nodes is in topological order (the file's order need not be), Value::producer
//    is set, optional inputs/outputs left empty in the model are null entries;
//  - If/Loop/Scan bodies are Graphs whose `parent` is the enclosing graph; a body's uses of
//    outer-scope names point directly at the outer Value.
// Any problem with the model (bad bytes, unsupported op or type, undefined or doubly
// defined value, cycle, unsafe external-data path, ...) raises user_error with a one-line
// message prefixed by the model's name.
#pragma once
#include <string>

#include "graph/graph.h"
#include "support/tensor.h"

namespace onnx {
class TensorProto;
}  // namespace onnx

namespace kiln {

// Reads and imports the file; external data is resolved relative to the file's folder.
Model load_onnx(const std::string &path);

// Imports serialized ModelProto bytes. External data is resolved relative to `base_dir`
// ("" means the current directory) and must stay inside it. `name_for_messages` prefixes
// errors and becomes Model::path.
Model load_onnx_bytes(const std::string &bytes, const std::string &base_dir,
                      const std::string &name_for_messages);

// Converts one TensorProto (raw_data, typed fields or external data under `base_dir`) to a
// Tensor. Validates dims, element count and data size before allocating. Errors name the
// tensor as `label` when given, else as "tensor '<proto name>'". Used by the importer and
// by tools/tests that read the ONNX backend test `.pb` files.
Tensor tensor_from_proto(const onnx::TensorProto &proto, const std::string &base_dir,
                         const std::string &label = "");

}  // namespace kiln
