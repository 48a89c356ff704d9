// Header-only C++ wrapper of the kiln runtime C API (kiln/runtime.h), with RAII and
// exceptions:
//
//   kilnrt::Model model("resnet50.so");
//   std::vector<float> x(1 * 3 * 224 * 224), y(1000);
//   model.run({kilnrt::Tensor::view("input", x.data(), {1, 3, 224, 224})},
//             {kilnrt::Tensor::buffer(y.data(), y.size())});
//
// Link with -lkiln_runtime.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "kiln/runtime.h"

namespace kilnrt {

// Thrown by every failing call; what() is kiln's one-line message.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename T>
constexpr kiln_dtype dtype_of() {
  if constexpr (std::is_same_v<T, float>) return KILN_F32;
  else if constexpr (std::is_same_v<T, double>) return KILN_F64;
  else if constexpr (std::is_same_v<T, int64_t>) return KILN_I64;
  else if constexpr (std::is_same_v<T, int32_t>) return KILN_I32;
  else if constexpr (std::is_same_v<T, int8_t>) return KILN_I8;
  else if constexpr (std::is_same_v<T, uint8_t>) return KILN_U8;
  else if constexpr (std::is_same_v<T, bool>) return KILN_BOOL;
  else static_assert(!sizeof(T), "no kiln dtype for this type");
}

// A non-owning view of a caller's buffer (kiln_tensor).
struct Tensor {
  kiln_tensor t{};

  // An input: `data` holds prod(shape) elements of T.
  template <typename T>
  static Tensor view(const char *name, const T *data, std::initializer_list<int64_t> shape) {
    return view(name, data, std::vector<int64_t>(shape));
  }
  template <typename T>
  static Tensor view(const char *name, const T *data, const std::vector<int64_t> &shape) {
    if (shape.size() > KILN_MAX_RANK) throw Error("rank " + std::to_string(shape.size()) + " is above KILN_MAX_RANK");
    Tensor x;
    x.t.name = name;
    x.t.dtype = dtype_of<T>();
    x.t.rank = static_cast<int>(shape.size());
    size_t n = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
      x.t.shape[i] = shape[i];
      n *= static_cast<size_t>(shape[i]);
    }
    x.t.data = const_cast<T *>(data);
    x.t.bytes = n * sizeof(T);
    return x;
  }
  // An output buffer of `count` elements; run() fills in dtype, rank and shape.
  template <typename T>
  static Tensor buffer(T *data, size_t count) {
    Tensor x;
    x.t.data = data;
    x.t.bytes = count * sizeof(T);
    return x;
  }

  std::string name() const { return t.name ? t.name : ""; }
  std::vector<int64_t> shape() const { return std::vector<int64_t>(t.shape, t.shape + (t.rank > 0 ? t.rank : 0)); }
  size_t numel() const {
    size_t n = 1;
    for (int i = 0; i < t.rank; ++i) n *= static_cast<size_t>(t.shape[i] < 0 ? 0 : t.shape[i]);
    return n;
  }
};

// What a model input or output looks like: -1 in shape marks a symbolic dim (dim_names
// holds its name, "" for fixed dims).
struct TensorInfo {
  std::string name;
  kiln_dtype dtype = KILN_UNDEFINED;
  std::vector<int64_t> shape;
  std::vector<std::string> dim_names;
};

class Model {
 public:
  explicit Model(const std::string &path) : m_(kiln_model_load(path.c_str())) {
    if (!m_) throw Error(kiln_last_error());
  }
  ~Model() { kiln_model_free(m_); }
  Model(const Model &) = delete;
  Model &operator=(const Model &) = delete;
  Model(Model &&o) noexcept : m_(o.m_) { o.m_ = nullptr; }
  Model &operator=(Model &&o) noexcept {
    std::swap(m_, o.m_);
    return *this;
  }

  std::vector<TensorInfo> inputs() const { return infos(true); }
  std::vector<TensorInfo> outputs() const { return infos(false); }
  std::string target() const { return kiln_model_target(m_); }

  // Runs with the given inputs (by name) into the given output buffers (in model order).
  void run(const std::vector<Tensor> &inputs, std::vector<Tensor> &outputs) {
    std::vector<kiln_tensor> in, out;
    for (auto &x : inputs) in.push_back(x.t);
    for (auto &x : outputs) out.push_back(x.t);
    kiln_status s = kiln_model_run(m_, in.data(), static_cast<int>(in.size()), out.data(), static_cast<int>(out.size()));
    for (size_t i = 0; i < out.size(); ++i) outputs[i].t = out[i];
    if (s != KILN_OK) throw Error(kiln_last_error());
  }
  void run(const std::vector<Tensor> &inputs, std::vector<Tensor> &&outputs) { run(inputs, outputs); }

  static void set_num_threads(int n) { kiln_set_num_threads(n); }
  static int num_threads() { return kiln_get_num_threads(); }
  kiln_model *handle() const { return m_; }

 private:
  std::vector<TensorInfo> infos(bool in) const {
    std::vector<TensorInfo> out;
    int n = in ? kiln_model_num_inputs(m_) : kiln_model_num_outputs(m_);
    for (int i = 0; i < n; ++i) {
      kiln_tensor t{};
      if ((in ? kiln_model_input_info(m_, i, &t) : kiln_model_output_info(m_, i, &t)) != KILN_OK) {
        throw Error(kiln_last_error());
      }
      TensorInfo info{t.name, t.dtype, {}, {}};
      for (int a = 0; a < t.rank; ++a) {
        info.shape.push_back(t.shape[a]);
        const char *d = in ? kiln_model_input_dim_name(m_, i, a) : kiln_model_output_dim_name(m_, i, a);
        info.dim_names.push_back(d ? d : "");
      }
      out.push_back(std::move(info));
    }
    return out;
  }
  kiln_model *m_;
};

}  // namespace kilnrt
