#include "graph/printer.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>

#include "support/error.h"

namespace kiln {

namespace {

bool is_bare(const std::string &s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.') return false;
  }
  return true;
}

std::string quote(const std::string &s) {
  std::string r = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': r += "\\\""; break;
      case '\\': r += "\\\\"; break;
      case '\n': r += "\\n"; break;
      case '\t': r += "\\t"; break;
      case '\r': r += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          r += buf;
        } else {
          r += ch;
        }
    }
  }
  return r + "\"";
}

std::string name_text(const std::string &s) { return is_bare(s) ? s : quote(s); }

// Statement keywords of a graph body; an op with such a name is quoted.
std::string op_text(const std::string &s) {
  if (s == "init" || s == "return" || s == "_") return quote(s);
  return name_text(s);
}

template <typename T>
std::string shortest(T v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

// A float attribute: never reads as an int. A double that is exactly a float32 (what the
// ONNX importer stores) prints as the shortest float32 text with an `f` suffix, so
// `0.1f` rather than `0.10000000149011612`.
std::string float_text(double d) {
  std::string s = shortest(d);
  auto f = static_cast<float>(d);
  if (std::isfinite(d) && static_cast<double>(f) == d) {
    std::string sf = shortest(f);
    if (sf != s) return sf + "f";
  }
  if (s.find_first_of(".eni") == std::string::npos) s += ".0";
  return s;
}

template <typename T>
bool is_canonical_nan(T v) {
  T q = std::numeric_limits<T>::quiet_NaN();
  return std::memcmp(&v, &q, sizeof(T)) == 0;
}

// Element i as text that the parser reads back bit-exactly; empty when there is none
// (a NaN with a payload, a bool byte other than 0/1), so the caller falls back to hex.
// The shortest decimal that reads back (through float) as the same 16-bit float.
template <typename ToBits>
std::string short_float16(float f, uint16_t bits, ToBits to_bits) {
  if (std::isnan(f)) return "";
  if (std::isinf(f)) return shortest(f);
  std::string best = shortest(f);
  char buf[32];
  for (int prec = 1; prec <= 9; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, static_cast<double>(f));
    float g = 0;
    auto r = std::from_chars(buf, buf + std::strlen(buf), g);
    if (r.ec == std::errc() && to_bits(g) == bits && std::strlen(buf) < best.size()) best = buf;
  }
  return best;
}

std::string element_text(const Tensor &t, int64_t i) {
  switch (t.dtype()) {
    case DType::F32: {
      float v = t.as<float>()[i];
      if (std::isnan(v)) return is_canonical_nan(v) ? "nan" : "";
      return shortest(v);
    }
    case DType::F64: {
      double v = t.as<double>()[i];
      if (std::isnan(v)) return is_canonical_nan(v) ? "nan" : "";
      return shortest(v);
    }
    case DType::F16: {
      uint16_t h = t.as<uint16_t>()[i];
      if (h == float_to_half(std::numeric_limits<float>::quiet_NaN())) return "nan";
      return short_float16(half_to_float(h), h, float_to_half);
    }
    case DType::BF16: {
      uint16_t b = t.as<uint16_t>()[i];
      if (b == float_to_bf16(std::numeric_limits<float>::quiet_NaN())) return "nan";
      return short_float16(bf16_to_float(b), b, float_to_bf16);
    }
    case DType::Bool: {
      uint8_t b = t.as<uint8_t>()[i];
      return b == 0 ? "false" : b == 1 ? "true" : "";
    }
    case DType::U64: return std::to_string(t.as<uint64_t>()[i]);
    case DType::String: return quote(t.strings()[static_cast<size_t>(i)]);
    default: return std::to_string(t.get_i64(i));
  }
}

std::string hex_text(const Tensor &t) {
  static const char kDigits[] = "0123456789abcdef";
  const auto *p = static_cast<const unsigned char *>(t.data());
  std::string r = "hex\"";
  r.reserve(t.nbytes() * 2 + 5);
  for (size_t i = 0; i < t.nbytes(); ++i) {
    r += kDigits[p[i] >> 4];
    r += kDigits[p[i] & 15];
  }
  return r + "\"";
}

std::string int_shape_text(const std::vector<int64_t> &shape) {
  return shape_str(shape_from(shape));
}

class Printer {
 public:
  explicit Printer(const PrintOptions &opts) : opts_(opts) {}

  std::string str() const { return os_.str(); }

  void model(const Model &m) {
    internal_assert(m.graph) << "model without a graph";
    os_ << "model {opset = " << m.opset << ", producer = " << quote(m.producer) << "}\n";
    graph(*m.graph);
    os_ << "\n";
  }

  void graph(const Graph &g) {
    os_ << "graph " << name_text(g.name) << "(";
    for (size_t i = 0; i < g.inputs.size(); ++i) {
      if (i) os_ << ", ";
      decl(g.inputs[i], false);
    }
    os_ << ") {\n";
    indent_ += 2;
    for (const Value *v : g.initializers) {
      line();
      os_ << "init ";
      decl(v, true);
      if (v && v->constant) {
        os_ << " = ";
        literal(*v->constant, v);
      }
      os_ << "\n";
    }
    for (const auto &n : g.nodes) {
      line();
      node(*n);
      os_ << "\n";
    }
    line();
    os_ << "return";
    for (size_t i = 0; i < g.outputs.size(); ++i)
      os_ << (i ? ", " : " ") << value_ref(g.outputs[i]);
    os_ << "\n";
    indent_ -= 2;
    line();
    os_ << "}";
  }

  void node(const Node &n) {
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      if (i) os_ << ", ";
      decl(n.outputs[i], false);
    }
    if (!n.outputs.empty()) os_ << " = ";
    if (!n.domain.empty()) os_ << name_text(n.domain) << "::";
    os_ << op_text(n.op_type);
    if (op_kind_from_name(n.op_type) != n.kind) os_ << "<" << op_name(n.kind) << ">";
    os_ << "(";
    for (size_t i = 0; i < n.inputs.size(); ++i) os_ << (i ? ", " : "") << value_ref(n.inputs[i]);
    os_ << ")";
    if (!n.name.empty()) os_ << " @" << name_text(n.name);
    if (n.attrs.empty()) return;
    os_ << " {";
    bool first = true;
    for (const auto &[name, a] : n.attrs) {
      if (!first) os_ << ", ";
      first = false;
      os_ << name_text(name) << " = ";
      attribute(a);
    }
    os_ << "}";
  }

 private:
  void line() { os_ << std::string(static_cast<size_t>(indent_), ' '); }

  void type(const Value &v) {
    if (v.dtype == DType::Undefined && !v.has_shape) {
      os_ << "?";
      return;
    }
    os_ << (v.dtype == DType::Undefined ? "?" : dtype_name(v.dtype));
    os_ << (v.has_shape ? shape_str(v.shape) : "[?]");
  }

  // `%name: type`, then what else the value carries. An initializer's constant is
  // printed by the caller after `=`.
  void decl(const Value *v, bool is_init) {
    if (!v) {
      os_ << "_";
      return;
    }
    os_ << value_ref(v) << ": ";
    type(*v);
    if (v->sym_values) os_ << " sym" << shape_str(*v->sym_values);
    if (v->constant && !is_init) {
      os_ << " const ";
      literal(*v->constant, v);
    }
  }

  // A tensor: its data alone when `v`'s type already says its dtype and shape,
  // otherwise `tensor<dtype[shape]>` then the data.
  void literal(const Tensor &t, const Value *v) {
    if (!t.defined()) {
      os_ << "tensor<undefined>";
      return;
    }
    bool implied = v && v->dtype == t.dtype() && v->has_shape && shape_is_const(v->shape) &&
                   shape_values(v->shape) == t.shape();
    if (!implied) os_ << "tensor<" << dtype_name(t.dtype()) << int_shape_text(t.shape()) << "> ";
    payload(t);
  }

  void payload(const Tensor &t) {
    int64_t n = t.numel();
    bool large = !opts_.show_constants_data && n > static_cast<int64_t>(opts_.max_elements);
    if (large && opts_.elide_large_constants) {
      os_ << "<" << n << " elements>";
      return;
    }
    if (!large || t.dtype() == DType::String) {
      std::string list = "[";
      for (int64_t i = 0; i < n; ++i) {
        std::string e = element_text(t, i);
        if (e.empty()) {
          list.clear();
          break;
        }
        if (i) list += ", ";
        list += e;
      }
      if (!list.empty()) {
        os_ << list << "]";
        return;
      }
    }
    os_ << hex_text(t);
  }

  template <typename T, typename F>
  void list(const char *empty_kind, const std::vector<T> &items, F &&each) {
    if (items.empty()) {
      os_ << empty_kind << "[]";
      return;
    }
    os_ << "[";
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) os_ << ", ";
      each(items[i]);
    }
    os_ << "]";
  }

  void subgraph(const std::shared_ptr<Graph> &g) {
    internal_assert(g) << "null subgraph in an attribute";
    graph(*g);
  }

  void attribute(const Attribute &a) {
    using K = Attribute::Kind;
    switch (a.kind) {
      case K::Undefined: os_ << "undefined"; break;
      case K::Float: os_ << float_text(a.f); break;
      case K::Int: os_ << a.i; break;
      case K::String: os_ << quote(a.s); break;
      case K::Tensor: literal(a.t, nullptr); break;
      case K::Graph:
        internal_assert(a.graphs.size() == 1)
            << "graph attribute holds " << a.graphs.size() << " graphs";
        subgraph(a.graphs[0]);
        break;
      case K::Floats: list("floats", a.floats, [&](double f) { os_ << float_text(f); }); break;
      case K::Ints: list("ints", a.ints, [&](int64_t i) { os_ << i; }); break;
      case K::Strings:
        list("strings", a.strings, [&](const std::string &s) { os_ << quote(s); });
        break;
      case K::Graphs:
        list("graphs", a.graphs, [&](const std::shared_ptr<Graph> &g) { subgraph(g); });
        break;
    }
  }

  const PrintOptions &opts_;
  std::ostringstream os_;
  int indent_ = 0;
};

}  // namespace

std::string value_ref(const Value *v) {
  if (!v) return "_";
  const std::string &n = v->name;
  if (is_bare(n)) return "%" + n;
  // Graph::new_value names unnamed values `%<id>`; print those as `%%<id>`.
  if (n.size() > 1 && n[0] == '%' && is_bare(n.substr(1))) return "%" + n;
  return "%" + quote(n);
}

std::string print_graph(const Graph &g, const PrintOptions &opts) {
  Printer p(opts);
  p.graph(g);
  return p.str() + "\n";
}

std::string print_model(const Model &m, const PrintOptions &opts) {
  Printer p(opts);
  p.model(m);
  return p.str();
}

std::string print_node(const Node &n, const PrintOptions &opts) {
  Printer p(opts);
  p.node(n);
  return p.str();
}

}  // namespace kiln
