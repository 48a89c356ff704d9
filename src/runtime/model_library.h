// A model compiled ahead of time (`kiln compile`): a shared library holding the generated
// kernels and the model data (runtime/model_format.h). Loading checks the file before
// dlopen (ELF header, architecture, truncation), then the recorded CPU features and format
// version, and binds every node to its kernel. Nothing is compiled at load or run time.
//
// The library's symbols (see compiler/model_library_writer.cpp):
//   kiln_model_data, kiln_model_data_size   the blob (64-byte aligned)
//   kiln_runtime_parallel_for               a pointer the runtime sets to its thread pool
//   k<N>_<Op>                               the kernels (runtime/kernel_abi.h)
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/executor.h"
#include "runtime/model_format.h"

namespace kiln {

class ModelLibrary {
 public:
  // Throws user_error with a one-line reason when `path` is not a loadable kiln model
  // library for this machine and runtime.
  static std::unique_ptr<ModelLibrary> load(const std::string &path);
  ~ModelLibrary();

  const Graph &graph() const { return *payload_.model.graph; }
  const ModelLibraryInfo &info() const { return payload_.info; }
  // Checks names, dtypes and shapes like CompiledModel::run; graph outputs in order.
  std::vector<Tensor> run(const std::map<std::string, Tensor> &inputs) const;
  const GraphRunner &runner() const { return *runner_; }

 private:
  ModelLibrary() = default;
  void *handle_ = nullptr;
  ModelPayload payload_;
  std::unique_ptr<GraphRunner> runner_;
};

// The model data of a library read from the file without loading it, so a library for
// another architecture can be inspected. Constants borrow from `blob`.
struct LibraryContents {
  std::shared_ptr<uint8_t> blob;
  ModelPayload payload;
};
LibraryContents read_model_library(const std::string &path);

// Whether `path` starts like an ELF file (so `kiln run` treats it as a model library).
bool is_elf_file(const std::string &path);

}  // namespace kiln
