// ModelProto -> Graph IR. A graph is imported in three steps: its initializers and inputs
// become values; its nodes are sorted (Kahn, stable with respect to the file's order,
// counting names that subgraphs read from this scope as dependencies of the node owning
// the subgraph); nodes are then created in that order, so every operand and every
// outer-scope name a subgraph reads already exists when it is looked up.
#include "onnx/importer.h"

#include <onnx/onnx_pb.h>

#include <climits>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <new>
#include <queue>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "support/error.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMaxOpset = 17;

bool is_default_domain(const std::string &d) { return d.empty() || d == "ai.onnx"; }

std::string graph_label(const onnx::GraphProto &gp) {
  return "graph '" + (gp.name().empty() ? std::string("(unnamed)") : gp.name()) + "'";
}

// "'relu1'" or "#3" for nodes without a name.
std::string node_id(const onnx::NodeProto &n, int index) {
  return n.name().empty() ? "#" + std::to_string(index) : "'" + n.name() + "'";
}

std::string node_label(const onnx::NodeProto &n, int index) {
  return "node " + node_id(n, index) + " (" + n.op_type() + ")";
}

const char *non_tensor_kind(const onnx::TypeProto &t) {
  switch (t.value_case()) {
    case onnx::TypeProto::kSequenceType: return "a sequence type";
    case onnx::TypeProto::kMapType: return "a map type";
    case onnx::TypeProto::kOptionalType: return "an optional type";
    case onnx::TypeProto::kSparseTensorType: return "a sparse tensor type";
    case onnx::TypeProto::kOpaqueType: return "an opaque type";
    default: return nullptr;
  }
}

void set_constant(Value *v, Tensor t) {
  v->dtype = t.dtype();
  v->shape = shape_from(t.shape());
  v->has_shape = true;
  v->constant = std::move(t);
}

// Names a graph reads from enclosing scopes: used (by its nodes, its nested subgraphs or
// as its outputs) but not defined in it.
void collect_outer_names(const onnx::GraphProto &gp, std::set<std::string> &out) {
  std::unordered_set<std::string> defined;
  for (const auto &t : gp.initializer()) defined.insert(t.name());
  for (const auto &vi : gp.input()) defined.insert(vi.name());
  for (const auto &n : gp.node()) {
    for (const auto &o : n.output()) defined.insert(o);
  }
  std::set<std::string> used;
  for (const auto &n : gp.node()) {
    for (const auto &i : n.input()) used.insert(i);
    for (const auto &a : n.attribute()) {
      if (a.has_g()) collect_outer_names(a.g(), used);
      for (const auto &sub : a.graphs()) collect_outer_names(sub, used);
    }
  }
  for (const auto &o : gp.output()) used.insert(o.name());
  for (const auto &u : used) {
    if (!u.empty() && !defined.count(u)) out.insert(u);
  }
}

void collect_dim_params(const onnx::GraphProto &gp, std::set<std::string> &out) {
  auto scan = [&](const onnx::ValueInfoProto &vi) {
    if (!vi.type().has_tensor_type() || !vi.type().tensor_type().has_shape()) return;
    for (const auto &d : vi.type().tensor_type().shape().dim()) {
      if (d.has_dim_param()) out.insert(d.dim_param());
    }
  };
  for (const auto &vi : gp.input()) scan(vi);
  for (const auto &vi : gp.output()) scan(vi);
  for (const auto &vi : gp.value_info()) scan(vi);
  for (const auto &n : gp.node()) {
    for (const auto &a : n.attribute()) {
      if (a.has_g()) collect_dim_params(a.g(), out);
      for (const auto &sub : a.graphs()) collect_dim_params(sub, out);
    }
  }
}

// Attribute type, inferred from the field that is set when an old exporter left it out.
int attribute_type(const onnx::AttributeProto &a) {
  if (a.type() != onnx::AttributeProto::UNDEFINED) return a.type();
  if (a.has_f()) return onnx::AttributeProto::FLOAT;
  if (a.has_i()) return onnx::AttributeProto::INT;
  if (a.has_s()) return onnx::AttributeProto::STRING;
  if (a.has_t()) return onnx::AttributeProto::TENSOR;
  if (a.has_g()) return onnx::AttributeProto::GRAPH;
  if (a.floats_size()) return onnx::AttributeProto::FLOATS;
  if (a.ints_size()) return onnx::AttributeProto::INTS;
  if (a.strings_size()) return onnx::AttributeProto::STRINGS;
  if (a.graphs_size()) return onnx::AttributeProto::GRAPHS;
  if (a.tensors_size()) return onnx::AttributeProto::TENSORS;
  if (a.has_sparse_tensor()) return onnx::AttributeProto::SPARSE_TENSOR;
  return onnx::AttributeProto::UNDEFINED;
}

class Importer {
 public:
  Importer(std::string base_dir, int opset, std::set<std::pair<std::string, std::string>> fns,
           std::set<std::string> dim_params)
      : base_dir_(std::move(base_dir)),
        opset_(opset),
        functions_(std::move(fns)),
        dim_params_(std::move(dim_params)) {}

  void import_graph(const onnx::GraphProto &gp, Graph &g);

 private:
  using InfoMap = std::unordered_map<std::string, const onnx::ValueInfoProto *>;

  void import_initializers(const onnx::GraphProto &gp, Graph &g,
                           std::unordered_set<std::string> &local);
  void import_inputs(const onnx::GraphProto &gp, Graph &g, std::unordered_set<std::string> &local);
  InfoMap collect_value_info(const onnx::GraphProto &gp);
  void check_op(const onnx::NodeProto &n, int index);
  std::vector<int> sort_nodes(const onnx::GraphProto &gp, const Graph &g,
                              const std::unordered_set<std::string> &local);
  void import_constant(const onnx::NodeProto &n, int index, Graph &g);
  void import_node(const onnx::NodeProto &n, int index, Graph &g, const InfoMap &info);
  Attribute convert_attribute(const onnx::AttributeProto &a, Graph &g, const std::string &where);
  void apply_type(const onnx::ValueInfoProto &vi, Value *v, const char *what);
  Dim fresh_dim();

  std::string base_dir_;
  int opset_;  // 0: the model imports no default-domain opset
  std::set<std::pair<std::string, std::string>> functions_;  // (domain, name)
  std::set<std::string> dim_params_;  // symbols the model names itself
  int fresh_ = 0;
};

// Exporters and shape-inference tools also write names like "unk__3"; a fresh symbol must
// not alias one of them.
Dim Importer::fresh_dim() {
  std::string name;
  do {
    name = "unk__" + std::to_string(fresh_++);
  } while (dim_params_.count(name));
  return Dim::sym(name);
}

void Importer::apply_type(const onnx::ValueInfoProto &vi, Value *v, const char *what) {
  if (!vi.has_type()) return;
  const onnx::TypeProto &type = vi.type();
  if (const char *kind = non_tensor_kind(type)) {
    user_error << what << " '" << vi.name() << "' has " << kind << "; kiln supports tensors only";
  }
  if (!type.has_tensor_type()) return;
  const auto &tt = type.tensor_type();
  int et = tt.elem_type();
  if (et != onnx::TensorProto_DataType_UNDEFINED) {
    user_assert(dtype_valid(et))
        << what << " '" << vi.name() << "' has unsupported element type "
        << (onnx::TensorProto_DataType_IsValid(et)
                ? onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(et))
                : std::to_string(et));
    v->dtype = static_cast<DType>(et);
  }
  if (!tt.has_shape()) return;
  Shape shape;
  for (int i = 0; i < tt.shape().dim_size(); ++i) {
    const auto &d = tt.shape().dim(i);
    if (d.has_dim_value()) {
      user_assert(d.dim_value() >= 0) << what << " '" << vi.name() << "': dimension " << i
                                      << " is negative (" << d.dim_value() << ")";
      shape.push_back(Dim(d.dim_value()));
    } else if (d.has_dim_param() && !d.dim_param().empty()) {
      shape.push_back(Dim::sym(d.dim_param()));
    } else {
      shape.push_back(fresh_dim());
    }
  }
  v->shape = std::move(shape);
  v->has_shape = true;
}

void Importer::import_initializers(const onnx::GraphProto &gp, Graph &g,
                                   std::unordered_set<std::string> &local) {
  user_assert(gp.sparse_initializer_size() == 0)
      << graph_label(gp) << ": sparse initializers are not supported (sparse initializer '"
      << gp.sparse_initializer(0).values().name() << "')";
  for (const auto &t : gp.initializer()) {
    user_assert(!t.name().empty()) << graph_label(gp) << " has an initializer without a name";
    user_assert(local.insert(t.name()).second)
        << "initializer '" << t.name() << "' is defined more than once";
    Value *v = g.new_value(t.name());
    set_constant(v, tensor_from_proto(t, base_dir_, "initializer '" + t.name() + "'"));
    g.initializers.push_back(v);
  }
}

void Importer::import_inputs(const onnx::GraphProto &gp, Graph &g,
                             std::unordered_set<std::string> &local) {
  std::unordered_set<std::string> seen;
  for (const auto &vi : gp.input()) {
    user_assert(!vi.name().empty()) << graph_label(gp) << " has an input without a name";
    user_assert(seen.insert(vi.name()).second)
        << "input '" << vi.name() << "' is listed more than once in " << graph_label(gp);
    // An input with an initializer is a constant with a default (IR < 4 lists every
    // initializer as an input); kiln treats it as the constant.
    if (local.count(vi.name())) continue;
    local.insert(vi.name());
    Value *v = g.new_value(vi.name());
    apply_type(vi, v, "input");
    g.inputs.push_back(v);
  }
}

Importer::InfoMap Importer::collect_value_info(const onnx::GraphProto &gp) {
  InfoMap info;
  for (const auto &vi : gp.value_info()) {
    // Optional hints: non-tensor intermediates are left to the ops that produce them.
    if (vi.has_type() && vi.type().has_tensor_type()) info.emplace(vi.name(), &vi);
  }
  for (const auto &vi : gp.output()) {
    user_assert(!vi.name().empty()) << graph_label(gp) << " has an output without a name";
    if (vi.has_type()) {
      if (const char *kind = non_tensor_kind(vi.type())) {
        user_error << "output '" << vi.name() << "' has " << kind
                   << "; kiln supports tensors only";
      }
      info.emplace(vi.name(), &vi);
    }
  }
  return info;
}

void Importer::check_op(const onnx::NodeProto &n, int index) {
  if (!is_default_domain(n.domain())) {
    user_assert(!functions_.count({n.domain(), n.op_type()}))
        << "op '" << n.op_type() << "' from domain '" << n.domain() << "' (node "
        << node_id(n, index) << ") is a model-local function; kiln does not support functions";
    user_error << "unsupported op '" << n.op_type() << "' from domain '" << n.domain()
               << "' (node " << node_id(n, index) << ")";
  }
  user_assert(opset_ != 0) << "the model imports no opset for the default ONNX domain, which "
                           << node_label(n, index) << " uses";
  if (n.op_type() == "Constant") return;
  OpKind kind = op_kind_from_name(n.op_type());
  user_assert(kind != OpKind::Unknown && !is_kiln_internal_op(kind))
      << "unknown op '" << n.op_type() << "' (node " << node_id(n, index)
      << "): kiln does not support it";
}

std::vector<int> Importer::sort_nodes(const onnx::GraphProto &gp, const Graph &g,
                                      const std::unordered_set<std::string> &local) {
  int count = gp.node_size();
  std::unordered_map<std::string, int> producer;
  for (int i = 0; i < count; ++i) {
    for (const auto &o : gp.node(i).output()) {
      if (o.empty()) continue;
      user_assert(!local.count(o) && !producer.count(o))
          << "value '" << o << "' is defined more than once (again by "
          << node_label(gp.node(i), i) << "); ONNX graphs must be in SSA form";
      producer.emplace(o, i);
    }
  }

  std::vector<std::vector<int>> deps(count), users(count);
  std::vector<int> pending(count);
  for (int i = 0; i < count; ++i) {
    const onnx::NodeProto &n = gp.node(i);
    std::set<int> d;
    auto use = [&](const std::string &name, bool operand) {
      auto it = producer.find(name);
      if (it != producer.end()) {
        d.insert(it->second);
        return;
      }
      if (local.count(name) || (g.parent && g.parent->find(name))) return;
      // Undefined names inside a subgraph are reported by that subgraph's import.
      user_assert(!operand) << node_label(n, i) << " uses undefined value '" << name << "'";
    };
    for (const auto &in : n.input()) {
      if (!in.empty()) use(in, true);
    }
    std::set<std::string> outer;
    for (const auto &a : n.attribute()) {
      if (a.has_g()) collect_outer_names(a.g(), outer);
      for (const auto &sub : a.graphs()) collect_outer_names(sub, outer);
    }
    for (const auto &name : outer) use(name, false);
    deps[i].assign(d.begin(), d.end());
    for (int p : deps[i]) users[p].push_back(i);
    pending[i] = static_cast<int>(deps[i].size());
  }

  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (int i = 0; i < count; ++i) {
    if (pending[i] == 0) ready.push(i);
  }
  std::vector<int> order;
  order.reserve(count);
  while (!ready.empty()) {
    int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int u : users[i]) {
      if (--pending[u] == 0) ready.push(u);
    }
  }
  if (static_cast<int>(order.size()) == count) return order;

  // Walk back through unsorted predecessors; after `count` steps we are on a cycle.
  int cur = 0;
  while (pending[cur] == 0) ++cur;
  for (int step = 0; step < count; ++step) {
    for (int p : deps[cur]) {
      if (pending[p] > 0) {
        cur = p;
        break;
      }
    }
  }
  user_error << graph_label(gp) << " has a cycle through " << node_label(gp.node(cur), cur);
  return {};
}

void Importer::import_constant(const onnx::NodeProto &n, int index, Graph &g) {
  std::string where = "Constant " + node_id(n, index);
  user_assert(n.output_size() == 1 && !n.output(0).empty())
      << where << " must have exactly one output";
  user_assert(n.attribute_size() == 1)
      << where << " must have exactly one value attribute, has " << n.attribute_size();
  const onnx::AttributeProto &a = n.attribute(0);
  const std::string &out = n.output(0);
  const std::string &an = a.name();
  static const std::map<std::string, int> kExpected = {
      {"value", onnx::AttributeProto::TENSOR},
      {"value_float", onnx::AttributeProto::FLOAT},
      {"value_floats", onnx::AttributeProto::FLOATS},
      {"value_int", onnx::AttributeProto::INT},
      {"value_ints", onnx::AttributeProto::INTS},
      {"value_string", onnx::AttributeProto::STRING},
      {"value_strings", onnx::AttributeProto::STRINGS}};
  auto expected = kExpected.find(an);
  if (expected != kExpected.end()) {
    user_assert(attribute_type(a) == expected->second)
        << where << ": attribute '" << an << "' must be of type "
        << onnx::AttributeProto::AttributeType_Name(
               static_cast<onnx::AttributeProto::AttributeType>(expected->second));
  }
  Tensor t;
  if (an == "value") {
    t = tensor_from_proto(a.t(), base_dir_, "Constant '" + out + "'");
  } else if (an == "value_float") {
    t = Tensor::scalar_f32(a.f());
  } else if (an == "value_floats") {
    t = Tensor(DType::F32, {a.floats_size()});
    for (int i = 0; i < a.floats_size(); ++i) t.as<float>()[i] = a.floats(i);
  } else if (an == "value_int") {
    t = Tensor(DType::I64, {});
    *t.as<int64_t>() = a.i();
  } else if (an == "value_ints") {
    t = Tensor::from_i64(std::vector<int64_t>(a.ints().begin(), a.ints().end()),
                         {a.ints_size()});
  } else if (an == "value_string") {
    t = Tensor(DType::String, {});
    t.strings()[0] = a.s();
  } else if (an == "value_strings") {
    t = Tensor(DType::String, {a.strings_size()});
    for (int i = 0; i < a.strings_size(); ++i) t.strings()[i] = a.strings(i);
  } else if (an == "sparse_value") {
    user_error << where << ": sparse_value constants are not supported";
  } else {
    user_error << where << ": unknown attribute '" << an << "'";
  }
  Value *v = g.new_value(out);
  set_constant(v, std::move(t));
  g.initializers.push_back(v);
}

Attribute Importer::convert_attribute(const onnx::AttributeProto &a, Graph &g,
                                      const std::string &where) {
  user_assert(a.ref_attr_name().empty())
      << where << ": attribute '" << a.name() << "' refers to a function attribute";
  Attribute r;
  switch (attribute_type(a)) {
    case onnx::AttributeProto::FLOAT:
      r.kind = Attribute::Kind::Float;
      r.f = a.f();
      break;
    case onnx::AttributeProto::INT:
      r.kind = Attribute::Kind::Int;
      r.i = a.i();
      break;
    case onnx::AttributeProto::STRING:
      r.kind = Attribute::Kind::String;
      r.s = a.s();
      break;
    case onnx::AttributeProto::TENSOR:
      r.kind = Attribute::Kind::Tensor;
      r.t = tensor_from_proto(a.t(), base_dir_, where + ": attribute '" + a.name() + "'");
      break;
    case onnx::AttributeProto::GRAPH:
    case onnx::AttributeProto::GRAPHS: {
      bool single = attribute_type(a) == onnx::AttributeProto::GRAPH;
      r.kind = single ? Attribute::Kind::Graph : Attribute::Kind::Graphs;
      std::vector<const onnx::GraphProto *> protos;
      if (single) {
        protos.push_back(&a.g());
      } else {
        for (const auto &sub : a.graphs()) protos.push_back(&sub);
      }
      for (const onnx::GraphProto *sp : protos) {
        auto sub = std::make_shared<Graph>();
        sub->parent = &g;
        import_graph(*sp, *sub);
        r.graphs.push_back(std::move(sub));
      }
      break;
    }
    case onnx::AttributeProto::FLOATS:
      r.kind = Attribute::Kind::Floats;
      r.floats.assign(a.floats().begin(), a.floats().end());
      break;
    case onnx::AttributeProto::INTS:
      r.kind = Attribute::Kind::Ints;
      r.ints.assign(a.ints().begin(), a.ints().end());
      break;
    case onnx::AttributeProto::STRINGS:
      r.kind = Attribute::Kind::Strings;
      r.strings.assign(a.strings().begin(), a.strings().end());
      break;
    case onnx::AttributeProto::UNDEFINED:
      user_error << where << ": attribute '" << a.name() << "' has no type and no value";
      break;
    default:
      user_error << where << ": attribute '" << a.name() << "' has type "
                 << onnx::AttributeProto::AttributeType_Name(
                        static_cast<onnx::AttributeProto::AttributeType>(attribute_type(a)))
                 << ", which kiln does not support";
  }
  return r;
}

void Importer::import_node(const onnx::NodeProto &n, int index, Graph &g, const InfoMap &info) {
  std::string where = node_label(n, index);
  Node *node = g.new_node(op_kind_from_name(n.op_type()), n.op_type());
  node->name = n.name();
  node->domain = "";
  node->opset = opset_;
  for (const auto &a : n.attribute()) {
    user_assert(!a.name().empty()) << where << " has an attribute without a name";
    user_assert(!node->attrs.count(a.name()))
        << where << ": attribute '" << a.name() << "' is given more than once";
    node->attrs.emplace(a.name(), convert_attribute(a, g, where));
  }
  for (const auto &in : n.input()) {
    Value *v = in.empty() ? nullptr : g.find(in);
    internal_assert(in.empty() || v) << where << ": operand '" << in << "' not created yet";
    node->inputs.push_back(v);
  }
  for (const auto &out : n.output()) {
    if (out.empty()) {
      node->outputs.push_back(nullptr);
      continue;
    }
    Value *v = g.new_value(out);
    v->producer = node;
    auto it = info.find(out);
    if (it != info.end()) apply_type(*it->second, v, "value");
    node->outputs.push_back(v);
  }
}

void Importer::import_graph(const onnx::GraphProto &gp, Graph &g) {
  g.name = gp.name();
  std::unordered_set<std::string> local;  // inputs and initializers of this graph
  import_initializers(gp, g, local);
  import_inputs(gp, g, local);
  InfoMap info = collect_value_info(gp);
  for (int i = 0; i < gp.node_size(); ++i) check_op(gp.node(i), i);

  for (int i : sort_nodes(gp, g, local)) {
    const onnx::NodeProto &n = gp.node(i);
    if (n.op_type() == "Constant" && is_default_domain(n.domain())) {
      import_constant(n, i, g);
    } else {
      import_node(n, i, g, info);
    }
  }

  for (const auto &vi : gp.output()) {
    Value *v = g.find(vi.name());
    user_assert(v != nullptr) << graph_label(gp) << ": output '" << vi.name()
                              << "' is not defined by any node, input or initializer";
    g.outputs.push_back(v);
  }
}

Model import_model(const onnx::ModelProto &mp, const std::string &base_dir,
                   const std::string &name) {
  user_assert(mp.has_graph()) << "not a valid ONNX model (it has no graph)";
  int64_t opset = -1;
  for (const auto &imp : mp.opset_import()) {
    if (!is_default_domain(imp.domain())) continue;
    user_assert(opset == -1 || opset == imp.version())
        << "the model imports the default ONNX domain twice, at opsets " << opset << " and "
        << imp.version();
    opset = imp.version();
  }
  // Without a default-domain import only other-domain ops can follow; check_op reports
  // the first node of either kind.
  if (opset == -1) opset = 0;
  user_assert(opset >= 0) << "invalid default-domain opset " << opset;
  user_assert(opset <= kMaxOpset)
      << "the model uses opset " << opset << "; kiln supports opsets up to " << kMaxOpset
      << " (re-export with opset_version=" << kMaxOpset << ")";

  std::set<std::pair<std::string, std::string>> functions;
  for (const auto &f : mp.functions()) functions.emplace(f.domain(), f.name());

  Model m;
  m.opset = opset;
  m.producer = mp.producer_name();
  if (!mp.producer_version().empty()) m.producer += " " + mp.producer_version();
  m.path = name;
  m.graph = std::make_shared<Graph>();
  std::set<std::string> dim_params;
  collect_dim_params(mp.graph(), dim_params);
  Importer importer(base_dir, static_cast<int>(opset), std::move(functions), std::move(dim_params));
  importer.import_graph(mp.graph(), *m.graph);
  return m;
}

// Runs `f`, prefixing the model's name to every user-facing error it raises.
template <typename F>
Model with_model_name(const std::string &name, F &&f) {
  try {
    return f();
  } catch (const Error &e) {
    if (e.kind() != ErrorKind::User) throw;
    user_error << name << ": " << e.what();
  } catch (const fs::filesystem_error &e) {
    user_error << name << ": " << e.what();
  } catch (const std::bad_alloc &) {
    user_error << name << ": out of memory while importing the model";
  }
  return {};
}

constexpr const char *kTooBig =
    "not a valid ONNX model for kiln: protobuf files are limited to 2 GB; store the weights "
    "as external data";

}  // namespace

Model load_onnx_bytes(const std::string &bytes, const std::string &base_dir,
                      const std::string &name_for_messages) {
  return with_model_name(name_for_messages, [&] {
    user_assert(!bytes.empty()) << "not a valid ONNX model (the file is empty)";
    user_assert(bytes.size() <= static_cast<size_t>(INT_MAX)) << kTooBig;
    onnx::ModelProto mp;
    user_assert(mp.ParseFromString(bytes)) << "not a valid ONNX model (protobuf parse failed)";
    return import_model(mp, base_dir, name_for_messages);
  });
}

Model load_onnx(const std::string &path) {
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  user_assert(!ec && fs::exists(st)) << path << ": no such file";
  user_assert(!fs::is_directory(st)) << path << ": is a directory, not an ONNX model";
  user_assert(fs::is_regular_file(st)) << path << ": not a regular file";
  uint64_t size = fs::file_size(path, ec);
  user_assert(!ec) << path << ": cannot read file size: " << ec.message();
  std::ifstream f(path, std::ios::binary);
  user_assert(f.good()) << path << ": cannot open for reading";
  std::string base = fs::path(path).parent_path().string();
  // Parsed straight from the stream: no copy of the file's bytes next to the message.
  return with_model_name(path, [&] {
    user_assert(size > 0) << "not a valid ONNX model (the file is empty)";
    user_assert(size <= static_cast<uint64_t>(INT_MAX)) << kTooBig;
    onnx::ModelProto mp;
    user_assert(mp.ParseFromIstream(&f)) << "not a valid ONNX model (protobuf parse failed)";
    return import_model(mp, base.empty() ? "." : base, path);
  });
}

}  // namespace kiln
