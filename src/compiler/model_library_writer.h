// Ahead-of-time compilation (`kiln compile`): the graph passes and kernels of the JIT,
// compiled for the target into object files and linked with the model data into one
// shared library that libkiln_runtime loads (runtime/model_library.h).
#pragma once
#include <string>

#include "compiler/compiler.h"

namespace kiln {

struct LibraryStats {
  CompileStats compile;
  double seconds_link = 0;
  size_t bytes = 0;  // of the written library
};

// Writes the library to `path` (replacing it only once it is complete). Throws user_error
// when a node's kernel can only be made at run time (its code depends on input values:
// pin the input shapes), or when the target's linker is missing.
LibraryStats compile_library(Model model, const CompileOptions &opts, const std::string &path);

// The C compiler driver that links libraries for `arch` ("x86_64": cc, "aarch64":
// aarch64-linux-gnu-gcc).
std::string linker_for(const std::string &arch);

}  // namespace kiln
