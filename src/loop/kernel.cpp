#include "loop/kernel.h"

#include "loop/printer.h"

namespace kiln {

std::string to_string(const Kernel &k) {
  std::string s = "kernel " + k.name + "(";
  for (size_t i = 0; i < k.buffers.size(); ++i) {
    if (i) s += ", ";
    s += k.buffers[i].name + ": " + k.buffers[i].type.str() + "*";
  }
  if (!k.dims.empty()) {
    s += "; ";
    for (size_t i = 0; i < k.dims.size(); ++i) {
      if (i) s += ", ";
      s += k.dims[i];
    }
  }
  s += ") {\n";
  std::string body = to_string(k.body);
  size_t p = 0;
  while (p < body.size()) {
    size_t e = body.find('\n', p);
    if (e == std::string::npos) e = body.size();
    s += "  " + body.substr(p, e - p) + "\n";
    p = e + 1;
  }
  return s + "}\n";
}

}  // namespace kiln
