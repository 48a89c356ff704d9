// Cast and CastLike to and from strings. Numbers print as the shortest text that reads
// back to the same value (what numpy's astype(str) gives); text parses with strtod, so
// "nan", "inf", "-INF" and exponents work. Text that is not a number is a user error.
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "runtime/runtime_kernel.h"
#include "support/error.h"

namespace kiln {

namespace {

std::string number_text(const Tensor &t, int64_t i) {
  char buf[64];
  std::to_chars_result r;
  switch (t.dtype()) {
    case DType::F32: {
      float v = t.as<float>()[i];
      if (std::isnan(v)) return "nan";
      if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
      r = std::to_chars(buf, buf + sizeof buf, v);
      break;
    }
    case DType::F64: case DType::F16: case DType::BF16: {
      double v = t.get_f64(i);
      if (std::isnan(v)) return "nan";
      if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
      r = t.dtype() == DType::F64 ? std::to_chars(buf, buf + sizeof buf, v)
                                  : std::to_chars(buf, buf + sizeof buf, static_cast<float>(v));
      break;
    }
    case DType::Bool: return t.get_i64(i) ? "True" : "False";
    case DType::U64: r = std::to_chars(buf, buf + sizeof buf, t.as<uint64_t>()[i]); break;
    default: r = std::to_chars(buf, buf + sizeof buf, t.get_i64(i)); break;
  }
  return std::string(buf, r.ptr);
}

}  // namespace

void run_cast_strings(RuntimeKernelContext &c) {
  const Tensor &x = c.input(0);
  DType to = c.node.kind == OpKind::CastLike ? c.input(1).dtype()
                                              : static_cast<DType>(c.node.attr_i("to", 0));
  Tensor y(to, x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (to == DType::String) {
      y.strings()[i] = x.dtype() == DType::String ? x.strings()[i] : number_text(x, i);
      continue;
    }
    user_assert(x.dtype() == DType::String) << c.node.describe() << ": expected a string input";
    const std::string &s = x.strings()[i];
    char *end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    user_assert(!s.empty() && end && *end == '\0')
        << c.node.describe() << ": cannot convert '" << s << "' to " << dtype_name(to);
    y.set_f64(i, v);
  }
  c.out[0] = y;
}

}  // namespace kiln
