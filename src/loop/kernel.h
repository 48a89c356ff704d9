// A kernel: one Loop IR body with its parameters. Generated code has the C signature
//   void name(void **buffers, const int64_t *dims)
// Every buffer (inputs, then outputs, then weights) arrives through `buffers`; every
// runtime extent through `dims`, bound to the i64 Vars named in `dims`. Generated code
// never embeds host pointers, so the same code serves JIT and AOT.
#pragma once
#include "runtime/kernel_abi.h"
#include <string>
#include <vector>

#include "loop/ir.h"

namespace kiln {

struct KernelBuffer {
  std::string name;
  Type type;  // element storage type
};

struct Kernel {
  std::string name;
  std::vector<KernelBuffer> buffers;
  std::vector<std::string> dims;
  Stmt body;
};

std::string to_string(const Kernel &k);

}  // namespace kiln
