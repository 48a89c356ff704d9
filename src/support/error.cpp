#include "support/error.h"

#include <exception>

namespace kiln {

ErrorStream::ErrorStream(ErrorKind kind, const char *file, int line)
    : kind_(kind), file_(file), line_(line) {}

ErrorStream::~ErrorStream() noexcept(false) {
  if (std::uncaught_exceptions() > 0) return;
  std::string m = msg_.str();
  if (kind_ == ErrorKind::Internal) {
    std::ostringstream s;
    s << "internal error at " << file_ << ":" << line_ << ": " << m;
    m = s.str();
  }
  throw Error(kind_, m);
}

}  // namespace kiln
