// Two kinds of errors, never mixed:
//  - user_error: a bad model, flag, input or request. Clear one-line message; callers turn it
//    into exit code 2 (CLI) or a 4xx (server).
//  - internal_assert: a bug in kiln itself.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace kiln {

enum class ErrorKind { User, Internal };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string &msg) : std::runtime_error(msg), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// Collects a message with operator<< and throws when destroyed (at the end of the full
// expression), Halide-style.
class ErrorStream {
 public:
  ErrorStream(ErrorKind kind, const char *file, int line);
  ErrorStream(const ErrorStream &) = delete;
  ~ErrorStream() noexcept(false);
  template <typename T>
  ErrorStream &operator<<(const T &v) {
    msg_ << v;
    return *this;
  }

 private:
  ErrorKind kind_;
  const char *file_;
  int line_;
  std::ostringstream msg_;
};

}  // namespace kiln

#define user_error ::kiln::ErrorStream(::kiln::ErrorKind::User, __FILE__, __LINE__)
// A for-statement (not if/else) so the macro can be the body of an unbraced if without
// -Wdangling-else; the body runs at most once, and throws.
#define user_assert(c) \
  for (bool kiln_ok_ = static_cast<bool>(c); !kiln_ok_; kiln_ok_ = true) user_error
#define internal_error ::kiln::ErrorStream(::kiln::ErrorKind::Internal, __FILE__, __LINE__)
#define internal_assert(c) \
  for (bool kiln_ok_ = static_cast<bool>(c); !kiln_ok_; kiln_ok_ = true) \
  internal_error << "condition failed: " #c " "
