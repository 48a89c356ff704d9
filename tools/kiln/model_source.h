// The model a command runs: an ONNX file compiled in process by the JIT, or a model
// library written by `kiln compile` and loaded by the runtime. `kiln run` and `kiln bench`
// take either.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli_args.h"
#include "compiler/compiler.h"
#include "runtime/model_library.h"

namespace kiln {

// The compile flags every command shares: -O0..-O3 (default -O3), --target, --no-cache,
// --shape NAME=DIMS (repeatable), --print-after, -v/--verbose. A command's parse_args
// decides which of them it accepts; absent ones keep their defaults.
CompileOptions compile_options_from(const Args &a);

class ModelSource {
 public:
  // Compiles `path` with `opts` (pinning the shapes of the given inputs), or loads it when
  // it is a library, refusing the compile-only flags in `a` with a one-line error.
  static std::unique_ptr<ModelSource> open(const std::string &path, CompileOptions opts,
                                           const std::map<std::string, Tensor> &inputs, const Args &a);

  const Graph &graph() const;
  // Graph input / output `v`'s shape as callers pass / get it (CompiledModel::caller_shape).
  Shape caller_shape(const Value &v) const;
  std::vector<Tensor> run(const std::map<std::string, Tensor> &inputs) const;
  void set_profiling(bool on) const;
  std::vector<std::pair<const Node *, double>> profile_ms() const;
  // Null for a library.
  const CompiledModel *compiled() const { return jit_.get(); }
  const ModelLibrary *library() const { return lib_.get(); }

 private:
  std::unique_ptr<CompiledModel> jit_;
  std::unique_ptr<ModelLibrary> lib_;
};

}  // namespace kiln
