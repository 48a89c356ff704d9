#include "graph/parser.h"

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>

#include "support/error.h"

namespace kiln {

namespace {

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
}

// What a `%name: type ...` declaration says, before the value exists: a node's outputs
// are created only after its subgraphs are parsed, so that those cannot see them.
struct Decl {
  size_t at = 0;
  std::string name;
  DType dtype = DType::Undefined;
  Shape shape;
  bool has_shape = false;
  std::optional<std::vector<Dim>> sym_values;
  std::optional<Tensor> constant;
};

template <typename T>
bool parse_number(const std::string &s, T &out) {
  const char *b = s.data(), *e = s.data() + s.size();
  if (b != e && *b == '+') ++b;
  auto [ptr, ec] = std::from_chars(b, e, out);
  return ec == std::errc() && ptr == e;
}

class Parser {
 public:
  explicit Parser(const std::string &text) : s_(text) {}

  Model model() {
    Model m;
    if (accept_word("model")) {
      size_t at = here();
      for (auto &[key, a] : attributes()) {
        if (key == "opset" && a.kind == Attribute::Kind::Int) {
          m.opset = a.i;
        } else if (key == "producer" && a.kind == Attribute::Kind::String) {
          m.producer = a.s;
        } else {
          fail(at, "model header takes `opset = INT` and `producer = \"...\"`, not '" + key + "'");
        }
      }
    }
    opset_ = static_cast<int>(m.opset);
    m.graph = graph(nullptr);
    ws();
    if (p_ != s_.size()) fail(p_, "unexpected text after the graph");
    return m;
  }

 private:
  // ---- characters and tokens ----

  [[noreturn]] void fail(size_t at, const std::string &msg) const {
    int line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < at && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    user_error << line << ":" << (at - line_start + 1) << ": " << msg;
    std::abort();  // not reached: user_error throws
  }

  void ws() {
    while (p_ < s_.size()) {
      if (std::isspace(static_cast<unsigned char>(s_[p_]))) {
        ++p_;
      } else if (s_[p_] == '#') {
        while (p_ < s_.size() && s_[p_] != '\n') ++p_;
      } else {
        break;
      }
    }
  }
  size_t here() {
    ws();
    return p_;
  }
  char peek() {
    ws();
    return p_ < s_.size() ? s_[p_] : '\0';
  }
  bool accept(char c) {
    if (peek() != c) return false;
    ++p_;
    return true;
  }
  bool accept(const char *tok) {
    ws();
    size_t n = std::strlen(tok);
    if (s_.compare(p_, n, tok) != 0) return false;
    p_ += n;
    return true;
  }
  std::string found() {
    ws();
    if (p_ >= s_.size()) return "end of input";
    size_t q = p_;
    while (q < s_.size() && is_name_char(s_[q])) ++q;
    return "'" + s_.substr(p_, std::max<size_t>(q - p_, 1)) + "'";
  }
  void expect(char c) {
    if (!accept(c)) fail(here(), std::string("expected '") + c + "', found " + found());
  }
  // The bare word at the cursor, without consuming it.
  std::string peek_word() {
    ws();
    size_t q = p_;
    while (q < s_.size() && is_name_char(s_[q])) ++q;
    return s_.substr(p_, q - p_);
  }
  bool accept_word(const std::string &w) {
    if (peek_word() != w) return false;
    p_ += w.size();
    return true;
  }
  void expect_word(const std::string &w) {
    if (!accept_word(w)) fail(here(), "expected '" + w + "', found " + found());
  }

  std::string quoted() {
    size_t at = here();
    expect('"');
    std::string r;
    while (true) {
      if (p_ >= s_.size() || s_[p_] == '\n') fail(at, "unterminated string");
      char c = s_[p_++];
      if (c == '"') return r;
      if (c != '\\') {
        r += c;
        continue;
      }
      if (p_ >= s_.size()) fail(at, "unterminated string");
      char e = s_[p_++];
      switch (e) {
        case 'n': r += '\n'; break;
        case 't': r += '\t'; break;
        case 'r': r += '\r'; break;
        case '"':
        case '\\': r += e; break;
        case 'x': {
          unsigned v = 0;
          auto [ptr, ec] =
              std::from_chars(s_.data() + p_, s_.data() + std::min(p_ + 2, s_.size()), v, 16);
          if (ec != std::errc() || ptr != s_.data() + p_ + 2)
            fail(p_, "expected two hex digits after \\x");
          p_ += 2;
          r += static_cast<char>(v);
          break;
        }
        default: fail(p_ - 2, std::string("unknown escape '\\") + e + "'");
      }
    }
  }

  // A bare [A-Za-z0-9_.]+ word or a quoted string.
  std::string name(const char *what) {
    if (peek() == '"') return quoted();
    std::string w = peek_word();
    if (w.empty()) fail(here(), std::string("expected ") + what + ", found " + found());
    p_ += w.size();
    return w;
  }

  // After `%`: a name, or `%digits` for the names Graph::new_value makes up.
  std::string value_name() {
    if (p_ < s_.size() && s_[p_] == '%') {
      ++p_;
      std::string w = peek_word();
      if (w.empty()) fail(p_, "expected a value name after '%'");
      p_ += w.size();
      return "%" + w;
    }
    if (p_ < s_.size() && s_[p_] == '"') return quoted();
    std::string w;
    while (p_ < s_.size() && is_name_char(s_[p_])) w += s_[p_++];
    if (w.empty()) fail(p_, "expected a value name after '%'");
    return w;
  }

  // A number as one token: digits, letters (exponents, inf, nan, the `f` suffix), signs, dot.
  std::string number_token() {
    ws();
    size_t q = p_;
    while (q < s_.size() && (is_name_char(s_[q]) || s_[q] == '+' || s_[q] == '-')) ++q;
    std::string t = s_.substr(p_, q - p_);
    p_ = q;
    return t;
  }

  // ---- types, shapes, constants ----

  // `[d0, d1, ...]` of symbolic dims, each in Dim::str() form; `[?]` is an unknown rank.
  std::optional<Shape> dims() {
    expect('[');
    if (accept('?')) {
      expect(']');
      return std::nullopt;
    }
    Shape shape;
    if (accept(']')) return shape;
    while (true) {
      size_t start = here();
      int depth = 0;
      bool in_str = false;
      for (; p_ < s_.size(); ++p_) {
        char c = s_[p_];
        if (in_str) {
          if (c == '\\')
            ++p_;
          else if (c == '"')
            in_str = false;
        } else if (c == '"') {
          in_str = true;
        } else if (c == '(') {
          ++depth;
        } else if (c == ')') {
          --depth;
        } else if (depth == 0 && (c == ',' || c == ']')) {
          break;
        } else if (c == '\n') {
          break;
        }
      }
      std::string text = s_.substr(start, p_ - start);
      while (!text.empty() && text.back() == ' ') text.pop_back();
      std::optional<Dim> d;
      try {
        d = parse_dim(text);
      } catch (const Error &e) {
        fail(start, e.what());
      }
      if (!d) fail(start, "malformed dimension '" + text + "'");
      shape.push_back(*d);
      if (accept(']')) return shape;
      expect(',');
    }
  }

  std::vector<int64_t> int_shape() {
    size_t at = here();
    auto s = dims();
    if (!s || !shape_is_const(*s)) fail(at, "a constant needs a concrete shape");
    return shape_values(*s);
  }

  DType dtype() {
    size_t at = here();
    std::string w = peek_word();
    DType t = dtype_from_name(w);
    if (t == DType::Undefined) fail(at, "unknown dtype " + found());
    p_ += w.size();
    return t;
  }

  int64_t numel(size_t at, const std::vector<int64_t> &shape) {
    try {
      return shape_numel(shape);
    } catch (const Error &e) {
      fail(at, e.what());
    }
  }

  Tensor make_tensor(size_t at, DType dt, const std::vector<int64_t> &shape) {
    try {
      return Tensor(dt, shape);
    } catch (const Error &e) {
      fail(at, e.what());
    }
  }

  // `tensor<dtype[shape]> DATA`, or DATA alone when `implied` gives dtype and shape.
  Tensor literal(const Decl *implied) {
    size_t at = here();
    DType dt;
    std::vector<int64_t> shape;
    if (accept_word("tensor")) {
      expect('<');
      if (accept_word("undefined")) {
        expect('>');
        return Tensor();
      }
      dt = dtype();
      shape = int_shape();
      expect('>');
    } else {
      if (!implied || implied->dtype == DType::Undefined || !implied->has_shape ||
          !shape_is_const(implied->shape)) {
        fail(at,
             "constant data needs `tensor<dtype[shape]>` when the value's type is not concrete");
      }
      dt = implied->dtype;
      shape = shape_values(implied->shape);
    }
    at = here();
    if (peek() == '<') {
      fail(at,
           "constant data was elided when printed (elide_large_constants) and cannot be parsed");
    }
    if (accept_word("hex")) return hex_data(at, dt, shape);
    // Each element takes at least two characters of text: refuse before allocating.
    if (numel(at, shape) > static_cast<int64_t>(s_.size() - p_) / 2 + 1) {
      fail(at, "too few elements for shape " + shape_str(shape_from(shape)));
    }
    Tensor t = make_tensor(at, dt, shape);
    expect('[');
    int64_t n = 0;
    if (!accept(']')) {
      do {
        if (n >= t.numel())
          fail(here(), "more elements than the shape " + shape_str(shape_from(shape)) + " holds");
        element(t, n++);
      } while (accept(','));
      expect(']');
    }
    if (n != t.numel()) {
      fail(at, std::to_string(n) + " elements given for shape " + shape_str(shape_from(shape)));
    }
    return t;
  }

  Tensor hex_data(size_t at, DType dt, const std::vector<int64_t> &shape) {
    if (dt == DType::String) fail(at, "string tensors take a list of strings, not hex");
    std::string hex = quoted();
    int64_t n = numel(at, shape);
    if (hex.size() % 2 != 0 || hex.size() / 2 / dtype_size(dt) != static_cast<uint64_t>(n) ||
        hex.size() / 2 % dtype_size(dt) != 0) {
      fail(at, "hex data has " + std::to_string(hex.size() / 2) + " bytes; " + dtype_name(dt) +
                   shape_str(shape_from(shape)) + " needs " +
                   std::to_string(static_cast<uint64_t>(n) * dtype_size(dt)));
    }
    Tensor t = make_tensor(at, dt, shape);
    auto *p = static_cast<unsigned char *>(t.data());
    for (size_t i = 0; i < hex.size(); i += 2) {
      unsigned v = 0;
      auto [ptr, ec] = std::from_chars(hex.data() + i, hex.data() + i + 2, v, 16);
      if (ec != std::errc() || ptr != hex.data() + i + 2) fail(at, "malformed hex data");
      p[i / 2] = static_cast<unsigned char>(v);
    }
    return t;
  }

  void element(Tensor &t, int64_t i) {
    size_t at = here();
    DType dt = t.dtype();
    if (dt == DType::String) {
      t.strings()[static_cast<size_t>(i)] = quoted();
      return;
    }
    if (dt == DType::Bool) {
      if (accept_word("true"))
        t.as<uint8_t>()[i] = 1;
      else if (accept_word("false"))
        t.as<uint8_t>()[i] = 0;
      else
        fail(at, "expected true or false, found " + found());
      return;
    }
    std::string tok = number_token();
    auto bad = [&]() {
      fail(at, "malformed " + std::string(dtype_name(dt)) + " element '" + tok + "'");
    };
    if (dt == DType::F64) {
      if (!parse_number(tok, t.as<double>()[i])) bad();
      return;
    }
    if (dtype_is_float(dt)) {
      float f = 0;
      if (!parse_number(tok, f)) bad();
      if (dt == DType::F32)
        t.as<float>()[i] = f;
      else if (dt == DType::F16)
        t.as<uint16_t>()[i] = float_to_half(f);
      else
        t.as<uint16_t>()[i] = float_to_bf16(f);
      return;
    }
    if (dt == DType::U64) {
      if (!parse_number(tok, t.as<uint64_t>()[i])) bad();
      return;
    }
    int64_t v = 0;
    if (!parse_number(tok, v)) bad();
    int64_t lo = 0, hi = 0;
    switch (dt) {
      case DType::I8: lo = INT8_MIN, hi = INT8_MAX; break;
      case DType::U8: lo = 0, hi = UINT8_MAX; break;
      case DType::I16: lo = INT16_MIN, hi = INT16_MAX; break;
      case DType::U16: lo = 0, hi = UINT16_MAX; break;
      case DType::I32: lo = INT32_MIN, hi = INT32_MAX; break;
      case DType::U32: lo = 0, hi = UINT32_MAX; break;
      default: lo = INT64_MIN, hi = INT64_MAX; break;
    }
    if (v < lo || v > hi) fail(at, tok + " is out of range for " + dtype_name(dt));
    switch (dt) {
      case DType::I8: t.as<int8_t>()[i] = static_cast<int8_t>(v); break;
      case DType::U8: t.as<uint8_t>()[i] = static_cast<uint8_t>(v); break;
      case DType::I16: t.as<int16_t>()[i] = static_cast<int16_t>(v); break;
      case DType::U16: t.as<uint16_t>()[i] = static_cast<uint16_t>(v); break;
      case DType::I32: t.as<int32_t>()[i] = static_cast<int32_t>(v); break;
      case DType::U32: t.as<uint32_t>()[i] = static_cast<uint32_t>(v); break;
      case DType::I64: t.as<int64_t>()[i] = v; break;
      default: fail(at, std::string("constants of dtype ") + dtype_name(dt) + " are not supported");
    }
  }

  // `%name: type [sym[dims]] [const DATA]`
  Decl decl() {
    Decl d;
    d.at = here();
    expect('%');
    d.name = value_name();
    expect(':');
    if (accept('?')) {
      if (peek() == '[') {
        auto s = dims();
        d.has_shape = s.has_value();
        if (s) d.shape = *s;
      }
    } else {
      d.dtype = dtype();
      auto s = dims();
      d.has_shape = s.has_value();
      if (s) d.shape = *s;
    }
    if (accept_word("sym")) {
      size_t at = here();
      auto s = dims();
      if (!s) fail(at, "symbolic values need a list of dims");
      d.sym_values = *s;
    }
    if (accept_word("const")) d.constant = literal(&d);
    return d;
  }

  // ---- graphs ----

  Value *define(Graph &g, const Decl &d) {
    if (scopes_.back().count(d.name)) fail(d.at, "value %" + d.name + " is defined twice");
    Value *v = g.new_value(d.name);
    v->name = d.name;
    v->dtype = d.dtype;
    v->shape = d.shape;
    v->has_shape = d.has_shape;
    v->sym_values = d.sym_values;
    v->constant = d.constant;
    scopes_.back()[d.name] = v;
    return v;
  }

  Value *use() {
    size_t at = here();
    expect('%');
    std::string n = value_name();
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto f = it->find(n);
      if (f != it->end()) return f->second;
    }
    fail(at, "undefined value %" + n + " (values must be defined before they are used)");
  }

  std::shared_ptr<Graph> graph(Graph *parent) {
    expect_word("graph");
    if (scopes_.size() >= kMaxNesting) fail(here(), "graphs nested too deeply");
    auto g = std::make_shared<Graph>();
    g->name = name("a graph name");
    g->parent = parent;
    scopes_.emplace_back();
    expect('(');
    if (!accept(')')) {
      do g->inputs.push_back(define(*g, decl()));
      while (accept(','));
      expect(')');
    }
    expect('{');
    while (!accept_word("return")) {
      if (peek() == '\0' || peek() == '}')
        fail(here(), "expected 'return' before the end of the graph");
      if (accept_word("init")) {
        init(*g);
      } else {
        node(*g);
      }
    }
    if (peek() == '%') {
      do g->outputs.push_back(use());
      while (accept(','));
    }
    expect('}');
    scopes_.pop_back();
    g->rebuild_index();
    return g;
  }

  void init(Graph &g) {
    Decl d = decl();
    if (accept('=')) {
      if (d.constant) fail(here(), "an initializer's data goes after '=' only");
      d.constant = literal(&d);
    }
    g.initializers.push_back(define(g, d));
  }

  bool at_output_list() {
    char c = peek();
    return c == '%' || (c == '_' && peek_word() == "_");
  }

  void node(Graph &g) {
    std::vector<std::optional<Decl>> outs;
    if (at_output_list()) {
      do {
        if (accept_word("_"))
          outs.emplace_back();
        else
          outs.emplace_back(decl());
      } while (accept(','));
      expect('=');
    }
    std::string domain, op_type = name("an op name");
    if (accept("::")) {
      domain = op_type;
      op_type = name("an op name");
    }
    OpKind kind = op_kind_from_name(op_type);
    if (accept('<')) {
      size_t at = here();
      std::string k = name("an op kind");
      kind = op_kind_from_name(k);
      if (kind == OpKind::Unknown && k != "Unknown") fail(at, "unknown op kind '" + k + "'");
      expect('>');
    }
    std::vector<Value *> inputs;
    expect('(');
    if (!accept(')')) {
      do inputs.push_back(accept_word("_") ? nullptr : use());
      while (accept(','));
      expect(')');
    }
    std::string node_name;
    if (accept('@')) node_name = name("a node name");
    std::map<std::string, Attribute> attrs;
    if (peek() == '{') {
      Graph *saved = cur_;
      cur_ = &g;
      attrs = attributes();
      cur_ = saved;
    }
    Node *n = g.new_node(kind, op_type);
    n->op_type = op_type;
    n->domain = domain;
    n->name = node_name;
    n->opset = opset_;
    n->inputs = std::move(inputs);
    n->attrs = std::move(attrs);
    for (auto &d : outs) {
      Value *v = d ? define(g, *d) : nullptr;
      if (v) v->producer = n;
      n->outputs.push_back(v);
    }
  }

  // ---- attributes ----

  std::map<std::string, Attribute> attributes() {
    std::map<std::string, Attribute> attrs;
    expect('{');
    if (accept('}')) return attrs;
    do {
      size_t at = here();
      std::string key = name("an attribute name");
      if (attrs.count(key)) fail(at, "attribute '" + key + "' given twice");
      expect('=');
      attrs[key] = attribute();
    } while (accept(','));
    expect('}');
    return attrs;
  }

  std::shared_ptr<Graph> subgraph() {
    if (!cur_) fail(here(), "a graph attribute is only allowed on a node");
    return graph(cur_);
  }

  // An int or a float: floats always have '.', an exponent, an `f` suffix, or are inf/nan.
  Attribute number() {
    size_t at = here();
    std::string tok = number_token();
    Attribute a;
    if (parse_number(tok, a.i)) {
      a.kind = Attribute::Kind::Int;
      return a;
    }
    a.kind = Attribute::Kind::Float;
    bool f32 = tok.size() > 1 && tok.back() == 'f' && tok.find("inf") == std::string::npos;
    if (f32) {
      float f = 0;
      if (!parse_number(tok.substr(0, tok.size() - 1), f))
        fail(at, "malformed number '" + tok + "'");
      a.f = f;
    } else if (!parse_number(tok, a.f)) {
      fail(at, "malformed number '" + tok + "'");
    }
    return a;
  }

  Attribute attribute() {
    using K = Attribute::Kind;
    Attribute a;
    size_t at = here();
    char c = peek();
    std::string w = peek_word();
    if (c == '"') {
      a.kind = K::String;
      a.s = quoted();
    } else if (c == '[') {
      list(a);
    } else if (w == "ints" || w == "floats" || w == "strings" || w == "graphs") {
      p_ += w.size();
      expect('[');
      expect(']');
      a.kind = w == "ints"      ? K::Ints
               : w == "floats"  ? K::Floats
               : w == "strings" ? K::Strings
                                : K::Graphs;
    } else if (w == "tensor") {
      a.kind = K::Tensor;
      a.t = literal(nullptr);
    } else if (w == "graph") {
      a.kind = K::Graph;
      a.graphs.push_back(subgraph());
    } else if (accept_word("undefined")) {
      a.kind = K::Undefined;
    } else if (c == '-' || c == '+' || std::isdigit(static_cast<unsigned char>(c)) || w == "inf" ||
               w == "nan") {
      a = number();
    } else {
      fail(at, "expected an attribute value, found " + found());
    }
    return a;
  }

  void list(Attribute &a) {
    using K = Attribute::Kind;
    size_t at = here();
    expect('[');
    if (peek() == ']')
      fail(at, "an empty list needs its kind: ints[], floats[], strings[] or graphs[]");
    bool strings = peek() == '"', graphs = peek_word() == "graph";
    a.kind = strings ? K::Strings : graphs ? K::Graphs : K::Ints;
    std::vector<Attribute> nums;
    do {
      if (strings) {
        a.strings.push_back(quoted());
      } else if (graphs) {
        a.graphs.push_back(subgraph());
      } else {
        nums.push_back(number());
        if (nums.back().kind == K::Float) a.kind = K::Floats;
      }
    } while (accept(','));
    expect(']');
    for (auto &n : nums) {
      if (a.kind == K::Ints)
        a.ints.push_back(n.i);
      else
        a.floats.push_back(n.kind == K::Int ? static_cast<double>(n.i) : n.f);
    }
  }

  static constexpr size_t kMaxNesting = 100;

  const std::string &s_;
  size_t p_ = 0;
  int opset_ = 0;
  Graph *cur_ = nullptr;
  std::vector<std::map<std::string, Value *>> scopes_;
};

}  // namespace

Model parse_model(const std::string &text) { return Parser(text).model(); }

}  // namespace kiln
