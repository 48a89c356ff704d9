// The C API of include/kiln/compiler.h. No C++ exception crosses into C.
#include "kiln/compiler.h"

#include <new>
#include <sstream>
#include <string>

#include "compiler/model_library_writer.h"
#include "onnx/importer.h"
#include "support/error.h"

namespace {

thread_local std::string last_error;

kiln::CompileOptions options_from(const kiln_compile_options *o) {
  kiln::CompileOptions opts;
  opts.opt_level = 3;
  if (!o) return opts;
  user_assert(o->opt_level >= 0 && o->opt_level <= 3) << "opt_level must be 0..3, got " << o->opt_level;
  opts.opt_level = o->opt_level;
  if (o->target && *o->target) opts.target = o->target;
  opts.kernel_cache = o->kernel_cache != 0;
  opts.progress = o->progress != 0;
  if (o->shapes && *o->shapes) {
    std::stringstream ss(o->shapes);
    std::string item;
    while (std::getline(ss, item, ';')) {
      if (item.empty()) continue;
      auto eq = item.find('=');
      user_assert(eq != std::string::npos && eq > 0) << "shapes: expected NAME=DIMS, got '" << item << "'";
      std::vector<int64_t> dims;
      std::stringstream ds(item.substr(eq + 1));
      std::string d;
      while (std::getline(ds, d, 'x')) {
        user_assert(!d.empty() && d.size() < 12 && d.find_first_not_of("0123456789") == std::string::npos)
            << "shapes: bad dim '" << d << "' in '" << item << "'";
        dims.push_back(std::stoll(d));
      }
      opts.input_shapes[item.substr(0, eq)] = dims;
    }
  }
  return opts;
}

template <typename F>
kiln_status guarded(F &&f) {
  try {
    f();
    last_error.clear();
    return KILN_OK;
  } catch (const std::bad_alloc &) {
    last_error = "out of memory";
  } catch (const std::exception &e) {
    last_error = e.what();
  }
  return KILN_ERROR;
}

}  // namespace

extern "C" {

kiln_status kiln_compile_file(const char *onnx_path, const kiln_compile_options *options, const char *out_path) {
  return guarded([&] {
    user_assert(onnx_path && out_path) << "kiln_compile_file: NULL path";
    kiln::compile_library(kiln::load_onnx(onnx_path), options_from(options), out_path);
  });
}

kiln_status kiln_compile_bytes(const void *onnx, size_t size, const kiln_compile_options *options,
                               const char *out_path) {
  return guarded([&] {
    user_assert(onnx && out_path) << "kiln_compile_bytes: NULL argument";
    std::string bytes(static_cast<const char *>(onnx), size);
    kiln::compile_library(kiln::load_onnx_bytes(bytes, ".", "<in-memory model>"), options_from(options), out_path);
  });
}

const char *kiln_compile_last_error(void) { return last_error.c_str(); }

}  // extern "C"
