// The C API of include/kiln/runtime.h over ModelLibrary. Every entry point catches
// everything: no C++ exception crosses into C.
#include "kiln/runtime.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <new>
#include <string>

#include "runtime/model_library.h"
#include "runtime/thread_pool.h"
#include "support/error.h"

struct kiln_model {
  std::unique_ptr<kiln::ModelLibrary> lib;
  // Symbolic dim names by (input/output, index, axis), kept for the returned pointers.
  std::vector<std::vector<std::string>> input_dims, output_dims;
};

namespace {

thread_local std::string last_error;

void fail(const std::string &msg) { last_error = msg; }

template <typename F>
kiln_status guarded(F &&f) {
  try {
    f();
    return KILN_OK;
  } catch (const std::bad_alloc &) {
    fail("out of memory");
  } catch (const std::exception &e) {
    fail(e.what());
  } catch (...) {
    fail("unknown error");
  }
  return KILN_ERROR;
}

std::vector<std::vector<std::string>> dim_names(const std::vector<kiln::Value *> &vs) {
  std::vector<std::vector<std::string>> out;
  for (const kiln::Value *v : vs) {
    out.emplace_back();
    for (const kiln::Dim &d : v->shape) out.back().push_back(d.is_const() ? "" : d.str());
  }
  return out;
}

void describe(const kiln::Value &v, kiln_tensor *info) {
  kiln_tensor t{};
  t.name = v.name.c_str();
  t.dtype = static_cast<kiln_dtype>(v.dtype);
  t.rank = v.has_shape ? static_cast<int>(v.shape.size()) : -1;
  for (int a = 0; a < t.rank && a < KILN_MAX_RANK; ++a) t.shape[a] = v.shape[a].is_const() ? v.shape[a].value() : -1;
  *info = t;
}

const char *dim_name(const std::vector<std::vector<std::string>> &dims, int i, int axis) {
  if (i < 0 || i >= static_cast<int>(dims.size()) || axis < 0 || axis >= static_cast<int>(dims[i].size())) return nullptr;
  return dims[i][axis].empty() ? nullptr : dims[i][axis].c_str();
}

bool valid(const kiln_model *m) {
  if (m) return true;
  fail("the model is NULL");
  return false;
}

}  // namespace

extern "C" {

const char *kiln_version(void) { return KILN_VERSION; }

const char *kiln_last_error(void) { return last_error.c_str(); }

kiln_model *kiln_model_load(const char *path) {
  kiln_model *out = nullptr;
  guarded([&] {
    user_assert(path) << "kiln_model_load: path is NULL";
    auto m = std::make_unique<kiln_model>();
    m->lib = kiln::ModelLibrary::load(path);
    m->input_dims = dim_names(m->lib->graph().inputs);
    m->output_dims = dim_names(m->lib->graph().outputs);
    out = m.release();
  });
  return out;
}

void kiln_model_free(kiln_model *m) { delete m; }

int kiln_model_num_inputs(const kiln_model *m) {
  return valid(m) ? static_cast<int>(m->lib->graph().inputs.size()) : -1;
}

int kiln_model_num_outputs(const kiln_model *m) {
  return valid(m) ? static_cast<int>(m->lib->graph().outputs.size()) : -1;
}

kiln_status kiln_model_input_info(const kiln_model *m, int i, kiln_tensor *info) {
  return guarded([&] {
    user_assert(m && info) << "kiln_model_input_info: NULL argument";
    const auto &ins = m->lib->graph().inputs;
    user_assert(i >= 0 && i < static_cast<int>(ins.size())) << "input index " << i << " out of range (the model has "
                                                           << ins.size() << ")";
    describe(*ins[i], info);
  });
}

kiln_status kiln_model_output_info(const kiln_model *m, int i, kiln_tensor *info) {
  return guarded([&] {
    user_assert(m && info) << "kiln_model_output_info: NULL argument";
    const auto &outs = m->lib->graph().outputs;
    user_assert(i >= 0 && i < static_cast<int>(outs.size())) << "output index " << i << " out of range (the model has "
                                                             << outs.size() << ")";
    describe(*outs[i], info);
  });
}

const char *kiln_model_input_dim_name(const kiln_model *m, int i, int axis) {
  return m ? dim_name(m->input_dims, i, axis) : nullptr;
}

const char *kiln_model_output_dim_name(const kiln_model *m, int i, int axis) {
  return m ? dim_name(m->output_dims, i, axis) : nullptr;
}

const char *kiln_model_target(const kiln_model *m) { return m ? m->lib->info().target.c_str() : nullptr; }

kiln_status kiln_model_run(kiln_model *m, const kiln_tensor *inputs, int num_inputs, kiln_tensor *outputs,
                           int num_outputs) {
  return guarded([&] {
    user_assert(m) << "kiln_model_run: the model is NULL";
    const kiln::Graph &g = m->lib->graph();
    user_assert(num_inputs >= 0 && (inputs || num_inputs == 0)) << "kiln_model_run: inputs is NULL";
    user_assert(num_outputs == static_cast<int>(g.outputs.size()) && (outputs || num_outputs == 0))
        << "kiln_model_run: the model has " << g.outputs.size() << " outputs, " << num_outputs << " were given";
    std::map<std::string, kiln::Tensor> named;
    for (int i = 0; i < num_inputs; ++i) {
      const kiln_tensor &t = inputs[i];
      std::string name = t.name ? t.name : i < static_cast<int>(g.inputs.size()) ? g.inputs[i]->name : "";
      user_assert(!name.empty()) << "input " << i << " has no name and the model has only " << g.inputs.size()
                                 << " inputs";
      user_assert(t.rank >= 0 && t.rank <= KILN_MAX_RANK) << "input '" << name << "': rank " << t.rank << " out of range";
      auto dt = static_cast<kiln::DType>(t.dtype);
      user_assert(kiln::dtype_valid(t.dtype) && dt != kiln::DType::String)
          << "input '" << name << "': dtype " << int(t.dtype) << " is not supported";
      std::vector<int64_t> shape(t.shape, t.shape + t.rank);
      for (int64_t d : shape) user_assert(d >= 0) << "input '" << name << "': negative dim";
      size_t need = static_cast<size_t>(kiln::shape_numel(shape)) * kiln::dtype_size(dt);
      user_assert(t.bytes >= need && (t.data || need == 0))
          << "input '" << name << "': its buffer has " << t.bytes << " bytes, shape " << kiln::shape_str(shape)
          << " needs " << need;
      user_assert(named.emplace(name, kiln::Tensor::borrow(dt, shape, t.data)).second)
          << "input '" << name << "' is given twice";
    }
    std::vector<kiln::Tensor> result = m->lib->run(named);
    std::string short_of;
    for (int i = 0; i < num_outputs; ++i) {
      const kiln::Tensor &r = result[i];
      kiln_tensor &o = outputs[i];
      user_assert(r.dtype() != kiln::DType::String) << "output '" << g.outputs[i]->name
                                                    << "' holds strings, which the C API does not support";
      user_assert(r.rank() <= KILN_MAX_RANK) << "output '" << g.outputs[i]->name << "' has rank " << r.rank();
      o.name = g.outputs[i]->name.c_str();
      o.dtype = static_cast<kiln_dtype>(r.dtype());
      o.rank = r.rank();
      for (int a = 0; a < r.rank(); ++a) o.shape[a] = r.shape()[a];
      if (!o.data && o.bytes == 0) {
        o.data = std::aligned_alloc(64, std::max<size_t>(64, (r.nbytes() + 63) / 64 * 64));
        user_assert(o.data) << "out of memory for output '" << g.outputs[i]->name << "'";
        o.bytes = r.nbytes();
      }
      if (o.bytes < r.nbytes() || (!o.data && r.nbytes())) {
        if (short_of.empty()) {
          short_of = "output '" + g.outputs[i]->name + "' needs " + std::to_string(r.nbytes()) + " bytes, its buffer has " +
                     std::to_string(o.bytes);
        }
        continue;
      }
      if (r.nbytes()) std::memcpy(o.data, r.data(), r.nbytes());
    }
    user_assert(short_of.empty()) << short_of;
  });
}

void kiln_free(void *p) { std::free(p); }

void kiln_set_num_threads(int n) {
  if (n > 0) kiln::set_num_threads(n);
}

int kiln_get_num_threads(void) { return kiln::num_threads(); }

size_t kiln_dtype_size(kiln_dtype t) {
  return kiln::dtype_valid(t) ? kiln::dtype_size(static_cast<kiln::DType>(t)) : 0;
}

}  // extern "C"
