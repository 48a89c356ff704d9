#include "model_source.h"

#include "input_shapes.h"
#include "onnx/importer.h"
#include "support/error.h"

namespace kiln {

CompileOptions compile_options_from(const Args &a) {
  CompileOptions opts;
  opts.opt_level = 3;
  for (int l = 0; l <= 3; ++l) {
    if (a.flag("-O" + std::to_string(l))) opts.opt_level = l;
  }
  if (!a.get("--target").empty()) opts.target = a.get("--target");
  opts.kernel_cache = !a.flag("--no-cache");
  opts.print_after = a.get("--print-after");
  opts.progress = a.flag("--verbose") || a.flag("-v");
  for (auto &s : a.all("--shape")) {
    auto [name, dims] = split_pair(s, "--shape");
    opts.input_shapes[name] = parse_shape(dims, "--shape " + name);
  }
  return opts;
}

std::unique_ptr<ModelSource> ModelSource::open(const std::string &path, CompileOptions opts,
                                               const std::map<std::string, Tensor> &inputs, const Args &a) {
  auto src = std::make_unique<ModelSource>();
  bool so = path.size() > 3 && path.compare(path.size() - 3, 3, ".so") == 0;
  if (so || is_elf_file(path)) {
    for (const char *f : {"-O0", "-O1", "-O2", "-O3", "--no-cache"}) {
      user_assert(!a.flag(f)) << f << " applies when compiling; '" << path << "' is an already compiled library";
    }
    for (const char *o : {"--target", "--shape", "--print-after"}) {
      user_assert(a.all(o).empty()) << o << " applies when compiling; '" << path
                                    << "' is an already compiled library (see kiln compile --help)";
    }
    src->lib_ = ModelLibrary::load(path);
    return src;
  }
  Model m = load_onnx(path);
  pin_given_input_shapes(m, inputs, opts);
  src->jit_ = CompiledModel::compile(std::move(m), opts);
  return src;
}

const Graph &ModelSource::graph() const { return jit_ ? jit_->graph() : lib_->graph(); }
Shape ModelSource::caller_shape(const Value &v) const { return jit_ ? jit_->caller_shape(v) : v.shape; }

std::vector<Tensor> ModelSource::run(const std::map<std::string, Tensor> &inputs) const {
  return jit_ ? jit_->run(inputs) : lib_->run(inputs);
}

void ModelSource::set_profiling(bool on) const {
  if (jit_) jit_->set_profiling(on);
  else lib_->runner().set_profiling(on);
}

std::vector<std::pair<const Node *, double>> ModelSource::profile_ms() const {
  if (jit_) return jit_->profile_ms();
  std::vector<std::pair<const Node *, double>> out;
  for (auto &t : lib_->runner().profile()) out.emplace_back(t.node, t.ms);
  return out;
}

}  // namespace kiln
