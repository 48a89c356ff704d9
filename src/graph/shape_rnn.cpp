// Shape function of the recurrent ops LSTM, GRU and RNN.
#include "graph/shape_fn.h"
#include "support/error.h"

namespace kiln {

namespace {

int gates_of(OpKind k) { return k == OpKind::LSTM ? 4 : k == OpKind::GRU ? 3 : 1; }

void check_dim(const Dim &d, const Dim &want, const Node &n, const char *what) {
  if (d.is_const() && want.is_const()) {
    user_assert(d.value() == want.value())
        << n.describe() << ": " << what << " is " << d.value() << ", expected " << want.value();
  }
}

}  // namespace

// X is [seq, batch, input] (layout 0) or [batch, seq, input] (layout 1). Outputs:
// Y [seq, dirs, batch, hidden] / [batch, seq, dirs, hidden]; Y_h and Y_c (LSTM)
// [dirs, batch, hidden] / [batch, dirs, hidden].
void shape_rnn(ShapeContext &c) {
  const Node &n = c.node;
  const Shape &x = c.shape_of(0), &w = c.shape_of(1), &r = c.shape_of(2);
  DType t = c.input(0).dtype;
  user_assert(dtype_is_float(t)) << n.describe() << ": X must be a floating-point tensor, got " << dtype_name(t);
  user_assert(x.size() == 3 && w.size() == 3 && r.size() == 3)
      << n.describe() << ": X, W and R must be 3-D (got ranks " << x.size() << ", " << w.size() << ", " << r.size()
      << ")";
  std::string dir = n.attr_s("direction", "forward");
  user_assert(dir == "forward" || dir == "reverse" || dir == "bidirectional")
      << n.describe() << ": direction must be forward, reverse or bidirectional, got '" << dir << "'";
  int64_t layout = n.attr_i("layout", 0);
  user_assert(layout == 0 || layout == 1) << n.describe() << ": layout must be 0 or 1, got " << layout;
  Dim dirs(dir == "bidirectional" ? 2 : 1);
  Dim hidden = r[2];
  if (n.has_attr("hidden_size")) {
    int64_t h = n.attr_i("hidden_size", 0);
    user_assert(h > 0) << n.describe() << ": hidden_size must be positive, got " << h;
    check_dim(r[2], Dim(h), n, "R's last dim");
    hidden = Dim(h);
  }
  int g = gates_of(n.kind);
  check_dim(w[0], dirs, n, "W's direction dim");
  check_dim(r[0], dirs, n, "R's direction dim");
  check_dim(w[1], hidden * Dim(g), n, "W's gate dim");
  check_dim(r[1], hidden * Dim(g), n, "R's gate dim");
  check_dim(w[2], x[2], n, "W's input dim");
  if (n.kind == OpKind::LSTM) {
    int64_t input_forget = n.attr_i("input_forget", 0);
    user_assert(input_forget == 0 || input_forget == 1)
        << n.describe() << ": input_forget must be 0 or 1, got " << input_forget;
  }
  if (n.kind == OpKind::GRU) {
    int64_t lbr = n.attr_i("linear_before_reset", 0);
    user_assert(lbr == 0 || lbr == 1) << n.describe() << ": linear_before_reset must be 0 or 1, got " << lbr;
  }
  Dim seq = layout == 0 ? x[0] : x[1], batch = layout == 0 ? x[1] : x[0];
  // Optional inputs: B, sequence_lens, initial_h, (LSTM) initial_c, P.
  for (size_t i = 3; i < c.in.size(); ++i) {
    if (!c.has(i)) continue;
    const Shape &s = c.shape_of(i);
    bool is_lens = i == 4;
    if (is_lens) {
      user_assert(dtype_is_int(c.input(i).dtype)) << n.describe() << ": sequence_lens must be an integer tensor";
    } else {
      user_assert(c.input(i).dtype == t) << n.describe() << ": input " << i << " has type "
                                         << dtype_name(c.input(i).dtype) << ", expected " << dtype_name(t);
    }
    if (i == 3 || i == 7) {
      user_assert(s.size() == 2) << n.describe() << ": input " << i << " must be 2-D";
      check_dim(s[0], dirs, n, "bias/peephole direction dim");
      check_dim(s[1], hidden * Dim(i == 3 ? 2 * g : 3), n, i == 3 ? "B's second dim" : "P's second dim");
    } else if (is_lens) {
      user_assert(s.size() == 1) << n.describe() << ": sequence_lens must be 1-D";
      check_dim(s[0], batch, n, "sequence_lens length");
    } else {
      user_assert(s.size() == 3) << n.describe() << ": initial state " << i << " must be 3-D";
      Shape want = layout == 0 ? Shape{dirs, batch, hidden} : Shape{batch, dirs, hidden};
      for (int a = 0; a < 3; ++a) check_dim(s[a], want[a], n, "initial state dim");
    }
  }
  user_assert(n.kind == OpKind::LSTM || c.in.size() <= 6) << n.describe() << ": too many inputs";
  Shape y = layout == 0 ? Shape{seq, dirs, batch, hidden} : Shape{batch, seq, dirs, hidden};
  Shape yh = layout == 0 ? Shape{dirs, batch, hidden} : Shape{batch, dirs, hidden};
  c.set_output(0, t, y);
  c.set_output(1, t, yh);
  if (n.kind == OpKind::LSTM) c.set_output(2, t, yh);
}

}  // namespace kiln
