#include "runtime/model_format.h"

#include <cstring>
#include <unordered_map>

#include "support/error.h"

namespace kiln {

namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'L', 'I', 'B', '\0'};
constexpr size_t kAlign = 64;

class Writer {
 public:
  std::string head, data;

  template <typename T>
  void pod(T v) {
    head.append(reinterpret_cast<const char *>(&v), sizeof v);
  }
  void u64(uint64_t v) { pod(v); }
  void i64(int64_t v) { pod(v); }
  void str(const std::string &s) {
    u64(s.size());
    head += s;
  }
  void dim(const Dim &d) { str(d.str()); }
  void shape(const Shape &s) {
    u64(s.size());
    for (const Dim &d : s) dim(d);
  }
  void tensor(const Tensor &t) {
    pod(static_cast<uint8_t>(t.dtype()));
    u64(t.shape().size());
    for (int64_t d : t.shape()) i64(d);
    if (!t.defined()) return;
    if (t.dtype() == DType::String) {
      for (const std::string &s : t.strings()) str(s);
      return;
    }
    data.resize((data.size() + kAlign - 1) / kAlign * kAlign);
    u64(data.size());
    data.append(static_cast<const char *>(t.data()), t.nbytes());
  }

  // Values are numbered across the graph and its subgraphs in the order they are written;
  // a subgraph is written after its parent's values, so outer-scope uses refer back.
  void graph(const Graph &g) {
    str(g.name);
    u64(g.values.size());
    for (auto &v : g.values) {
      ids_[v.get()] = static_cast<int64_t>(ids_.size());
      str(v->name);
      pod(static_cast<uint8_t>(v->dtype));
      pod(static_cast<uint8_t>(v->has_shape));
      shape(v->shape);
      pod(static_cast<uint8_t>(v->constant.has_value()));
      if (v->constant) tensor(*v->constant);
      pod(static_cast<uint8_t>(v->sym_values.has_value()));
      if (v->sym_values) shape(*v->sym_values);
    }
    values(g.inputs);
    values(g.outputs);
    values(g.initializers);
    u64(g.nodes.size());
    for (auto &n : g.nodes) node(*n);
  }

  void kernel_table(const KernelTable &t) {
    u64(t.size());
    for (auto &[n, k] : t) {
      auto it = node_ids_.find(n);
      internal_assert(it != node_ids_.end()) << "kernel table names a node outside the graph";
      i64(it->second);
      str(k.name);
      u64(k.dim_refs.size());
      for (auto [op, axis] : k.dim_refs) {
        i64(op);
        i64(axis);
      }
    }
  }

 private:
  void values(const std::vector<Value *> &vs) {
    u64(vs.size());
    for (const Value *v : vs) {
      if (!v) {
        i64(-1);
        continue;
      }
      auto it = ids_.find(v);
      internal_assert(it != ids_.end()) << "value '" << v->name << "' is used before it is written";
      i64(it->second);
    }
  }
  void node(const Node &n) {
    node_ids_[&n] = static_cast<int64_t>(node_ids_.size());
    str(op_name(n.kind));
    str(n.op_type);
    str(n.name);
    str(n.domain);
    i64(n.opset);
    values(n.inputs);
    values(n.outputs);
    u64(n.attrs.size());
    for (auto &[name, a] : n.attrs) {
      str(name);
      pod(static_cast<uint8_t>(a.kind));
      pod(a.f);
      i64(a.i);
      str(a.s);
      pod(static_cast<uint8_t>(a.t.defined()));
      if (a.t.defined()) tensor(a.t);
      u64(a.floats.size());
      for (double f : a.floats) pod(f);
      u64(a.ints.size());
      for (int64_t i : a.ints) i64(i);
      u64(a.strings.size());
      for (auto &s : a.strings) str(s);
      u64(a.graphs.size());
      for (auto &g : a.graphs) graph(*g);
    }
  }
  std::unordered_map<const Value *, int64_t> ids_;
  std::unordered_map<const Node *, int64_t> node_ids_;
};

class Reader {
 public:
  Reader(const uint8_t *p, size_t n, const uint8_t *data, size_t data_size)
      : p_(p), end_(p + n), data_(data), data_size_(data_size) {}

  template <typename T>
  T pod() {
    need(sizeof(T), "field");
    T v;
    std::memcpy(&v, p_, sizeof v);
    p_ += sizeof v;
    return v;
  }
  uint64_t u64() { return pod<uint64_t>(); }
  int64_t i64() { return pod<int64_t>(); }
  uint64_t count(size_t min_bytes_each) {
    uint64_t n = u64();
    user_assert(n <= static_cast<uint64_t>(end_ - p_) / std::max<size_t>(1, min_bytes_each))
        << "corrupt model library: a count of " << n << " runs past the end of the data";
    return n;
  }
  std::string str() {
    uint64_t n = count(1);
    std::string s(reinterpret_cast<const char *>(p_), n);
    p_ += n;
    return s;
  }
  Dim dim() {
    std::string s = str();
    auto d = parse_dim(s);
    user_assert(d.has_value()) << "corrupt model library: bad dimension '" << s << "'";
    return *d;
  }
  Shape shape() {
    Shape s(count(8));
    for (Dim &d : s) d = dim();
    return s;
  }
  DType dtype() {
    uint8_t t = pod<uint8_t>();
    user_assert(t == 0 || dtype_valid(t))
        << "corrupt model library: bad dtype " << int(t);
    return static_cast<DType>(t);
  }
  Tensor tensor() {
    DType t = dtype();
    std::vector<int64_t> shape(count(8));
    int64_t numel = 1;
    for (int64_t &d : shape) {
      d = i64();
      user_assert(d >= 0 && (d == 0 || numel <= (int64_t{1} << 48) / d)) << "corrupt model library: bad tensor shape";
      numel *= d;
    }
    if (t == DType::Undefined) return Tensor();
    if (t == DType::String) {
      need(static_cast<size_t>(shape_numel(shape)) * 8, "string tensor");
      Tensor out(t, shape);
      for (std::string &s : out.strings()) s = str();
      return out;
    }
    uint64_t off = u64();
    size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(t);
    user_assert(off <= data_size_ && bytes <= data_size_ - off)
        << "corrupt model library: a tensor lies outside the weights section";
    return Tensor::borrow(t, std::move(shape), const_cast<uint8_t *>(data_ + off));
  }

  void graph(Graph &g) {
    g.name = str();
    uint64_t nv = count(8);
    for (uint64_t i = 0; i < nv; ++i) {
      Value *v = g.new_value(str());
      values_.push_back(v);
      v->dtype = dtype();
      v->has_shape = pod<uint8_t>() != 0;
      v->shape = shape();
      if (pod<uint8_t>()) v->constant = tensor();
      if (pod<uint8_t>()) v->sym_values = shape();
    }
    g.inputs = values();
    g.outputs = values();
    g.initializers = values();
    uint64_t nn = count(8);
    for (uint64_t i = 0; i < nn; ++i) node(g);
    g.rebuild_index();
  }

  void kernel_table(KernelTable &t) {
    uint64_t n = count(8);
    for (uint64_t i = 0; i < n; ++i) {
      int64_t id = i64();
      user_assert(id >= 0 && id < static_cast<int64_t>(nodes_.size())) << "corrupt model library: bad node index";
      StepKernel &k = t[nodes_[id]];
      k.name = str();
      uint64_t nd = count(16);
      for (uint64_t d = 0; d < nd; ++d) {
        int64_t op = i64(), axis = i64();
        k.dim_refs.emplace_back(static_cast<int>(op), static_cast<int>(axis));
      }
    }
  }

  void need(size_t n, const char *what) {
    user_assert(static_cast<size_t>(end_ - p_) >= n) << "corrupt model library: truncated " << what;
  }

 private:
  std::vector<Value *> values() {
    std::vector<Value *> out(count(8));
    for (Value *&v : out) {
      int64_t id = i64();
      user_assert(id >= -1 && id < static_cast<int64_t>(values_.size())) << "corrupt model library: bad value index";
      v = id < 0 ? nullptr : values_[id];
    }
    return out;
  }
  void node(Graph &g) {
    std::string kind = str();
    OpKind k = OpKind::Unknown;
    for (int i = 1; i < static_cast<int>(OpKind::Count); ++i) {
      if (kind == op_name(static_cast<OpKind>(i))) k = static_cast<OpKind>(i);
    }
    user_assert(k != OpKind::Unknown) << "model library uses op '" << kind << "', which this runtime lacks";
    Node *n = g.new_node(k, str());
    nodes_.push_back(n);
    n->name = str();
    n->domain = str();
    n->opset = static_cast<int>(i64());
    n->inputs = values();
    n->outputs = values();
    for (Value *o : n->outputs) {
      if (o) o->producer = n;
    }
    uint64_t na = count(8);
    for (uint64_t i = 0; i < na; ++i) {
      std::string name = str();
      Attribute &a = n->attrs[name];
      uint8_t kind_byte = pod<uint8_t>();
      user_assert(kind_byte <= static_cast<uint8_t>(Attribute::Kind::Graphs)) << "corrupt model library: bad attribute";
      a.kind = static_cast<Attribute::Kind>(kind_byte);
      a.f = pod<double>();
      a.i = i64();
      a.s = str();
      if (pod<uint8_t>()) a.t = tensor();
      a.floats.resize(count(8));
      for (double &f : a.floats) f = pod<double>();
      a.ints.resize(count(8));
      for (int64_t &v : a.ints) v = i64();
      a.strings.resize(count(8));
      for (std::string &s : a.strings) s = str();
      uint64_t ng = count(8);
      for (uint64_t j = 0; j < ng; ++j) {
        auto sub = std::make_shared<Graph>();
        sub->parent = &g;
        graph(*sub);
        a.graphs.push_back(std::move(sub));
      }
    }
  }

  const uint8_t *p_, *end_;
  const uint8_t *data_;
  size_t data_size_;
  std::vector<Value *> values_;
  std::vector<Node *> nodes_;
};

void write_info(Writer &w, const ModelLibraryInfo &info) {
  w.str(info.kiln_version);
  w.str(info.target);
  w.str(info.arch);
  w.u64(info.cpu_features.size());
  for (auto &f : info.cpu_features) w.str(f);
  w.i64(info.opt_level);
  w.str(info.source);
}

ModelLibraryInfo read_info(Reader &r, uint32_t version) {
  ModelLibraryInfo info;
  info.format_version = version;
  info.kiln_version = r.str();
  info.target = r.str();
  info.arch = r.str();
  info.cpu_features.resize(r.count(8));
  for (auto &f : info.cpu_features) f = r.str();
  info.opt_level = static_cast<int>(r.i64());
  info.source = r.str();
  return info;
}

// Checks the magic and version; returns (header section, weights section).
std::pair<Reader, uint32_t> open_blob(const uint8_t *data, size_t size) {
  user_assert(size >= 20 && std::memcmp(data, kMagic, sizeof kMagic) == 0) << "not a kiln model library (no model data)";
  uint32_t version;
  uint64_t head;
  std::memcpy(&version, data + 8, 4);
  std::memcpy(&head, data + 12, 8);
  user_assert(version == kModelFormatVersion)
      << "model library format version " << version << ", but this runtime reads version " << kModelFormatVersion
      << " (kiln " KILN_VERSION "); compile the model again with this kiln";
  size_t data_start = (20 + head + kAlign - 1) / kAlign * kAlign;
  user_assert(head <= size - 20 && data_start <= size) << "corrupt model library: truncated model data";
  return {Reader(data + 20, head, data + data_start, size - data_start), version};
}

}  // namespace

std::string serialize_model(const ModelLibraryInfo &info, const Model &m, const KernelTable &kernels) {
  Writer w;
  write_info(w, info);
  w.i64(m.opset);
  w.str(m.producer);
  w.graph(*m.graph);
  w.kernel_table(kernels);
  std::string out(kMagic, sizeof kMagic);
  uint32_t version = kModelFormatVersion;
  uint64_t head = w.head.size();
  out.append(reinterpret_cast<const char *>(&version), 4);
  out.append(reinterpret_cast<const char *>(&head), 8);
  out += w.head;
  out.resize((out.size() + kAlign - 1) / kAlign * kAlign);
  out += w.data;
  return out;
}

ModelLibraryInfo read_model_info(const uint8_t *data, size_t size) {
  auto [r, version] = open_blob(data, size);
  return read_info(r, version);
}

ModelPayload deserialize_model(const uint8_t *data, size_t size) {
  user_assert(reinterpret_cast<uintptr_t>(data) % kAlign == 0) << "model data is not 64-byte aligned";
  auto [r, version] = open_blob(data, size);
  ModelPayload p;
  p.info = read_info(r, version);
  p.model.opset = r.i64();
  p.model.producer = r.str();
  p.model.path = p.info.source;
  p.model.graph = std::make_shared<Graph>();
  r.graph(*p.model.graph);
  r.kernel_table(p.kernels);
  verify_graph(*p.model.graph);
  return p;
}

}  // namespace kiln
