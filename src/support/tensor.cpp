#include "support/tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>

#include "support/error.h"
#include "support/memory.h"

namespace kiln {

int64_t shape_numel(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    user_assert(d >= 0) << "negative dimension " << d << " in shape " << shape_str(shape);
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) {
      user_error << "shape " << shape_str(shape) << " has too many elements";
    }
    n *= d;
  }
  return n;
}

std::string shape_str(const std::vector<int64_t> &shape) {
  if (shape.empty()) return "scalar";
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += "x";
    s += std::to_string(shape[i]);
  }
  return s;
}

namespace {
// Refuse allocations no tensor of a sane model needs; keeps hostile inputs from
// exhausting memory.
constexpr size_t kMaxTensorBytes = size_t{16} << 30;
}  // namespace

Tensor::Tensor(DType dtype, std::vector<int64_t> shape) : dtype_(dtype), shape_(std::move(shape)) {
  int64_t n = shape_numel(shape_);
  if (dtype_ == DType::String) {
    strings_ = std::make_shared<std::vector<std::string>>(static_cast<size_t>(n));
    return;
  }
  size_t esize = dtype_size(dtype_);
  internal_assert(esize > 0) << "tensor of dtype " << dtype_name(dtype_);
  user_assert(static_cast<uint64_t>(n) <= kMaxTensorBytes / esize)
      << "tensor of shape " << shape_str(shape_) << " (" << dtype_name(dtype_)
      << ") exceeds the 16 GiB per-tensor limit";
  size_t bytes = static_cast<size_t>(n) * esize;
  size_t alloc = (bytes + 63) / 64 * 64;
  if (alloc == 0) alloc = 64;
  void *p = alloc_buffer(alloc);
  user_assert(p != nullptr) << "out of memory allocating " << bytes << " bytes";
  std::memset(p, 0, alloc);
  storage_ = std::shared_ptr<void>(p, [](void *q) { std::free(q); });
  data_ = p;
}

Tensor Tensor::borrow(DType dtype, std::vector<int64_t> shape, void *data) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.data_ = data;
  return t;
}

Tensor Tensor::over(DType dtype, std::vector<int64_t> shape, std::shared_ptr<void> storage) {
  internal_assert(storage && dtype != DType::String) << "Tensor::over needs numeric storage";
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.data_ = storage.get();
  t.storage_ = std::move(storage);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(dtype_, shape_);
  if (dtype_ == DType::String) {
    *t.strings_ = *strings_;
  } else if (nbytes()) {
    std::memcpy(t.data_, data_, nbytes());
  }
  return t;
}

Tensor Tensor::reshaped(std::vector<int64_t> shape) const {
  internal_assert(shape_numel(shape) == numel()) << "reshape " << shape_str(shape_) << " to "
                                                 << shape_str(shape);
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

double Tensor::get_f64(int64_t i) const {
  switch (dtype_) {
    case DType::F32: return as<float>()[i];
    case DType::F64: return as<double>()[i];
    case DType::F16: return half_to_float(as<uint16_t>()[i]);
    case DType::BF16: return bf16_to_float(as<uint16_t>()[i]);
    case DType::I8: return as<int8_t>()[i];
    case DType::U8: return as<uint8_t>()[i];
    case DType::Bool: return as<uint8_t>()[i] != 0;
    case DType::I16: return as<int16_t>()[i];
    case DType::U16: return as<uint16_t>()[i];
    case DType::I32: return as<int32_t>()[i];
    case DType::U32: return as<uint32_t>()[i];
    case DType::I64: return static_cast<double>(as<int64_t>()[i]);
    case DType::U64: return static_cast<double>(as<uint64_t>()[i]);
    default: internal_error << "get_f64 on " << dtype_name(dtype_);
  }
  return 0;
}

int64_t Tensor::get_i64(int64_t i) const {
  switch (dtype_) {
    case DType::I64: return as<int64_t>()[i];
    case DType::U64: return static_cast<int64_t>(as<uint64_t>()[i]);
    case DType::I32: return as<int32_t>()[i];
    case DType::U32: return as<uint32_t>()[i];
    case DType::I16: return as<int16_t>()[i];
    case DType::U16: return as<uint16_t>()[i];
    case DType::I8: return as<int8_t>()[i];
    case DType::U8: return as<uint8_t>()[i];
    case DType::Bool: return as<uint8_t>()[i] != 0;
    default: return static_cast<int64_t>(get_f64(i));
  }
}

void Tensor::set_f64(int64_t i, double v) {
  switch (dtype_) {
    case DType::F32: as<float>()[i] = static_cast<float>(v); break;
    case DType::F64: as<double>()[i] = v; break;
    case DType::F16: as<uint16_t>()[i] = float_to_half(static_cast<float>(v)); break;
    case DType::BF16: as<uint16_t>()[i] = float_to_bf16(static_cast<float>(v)); break;
    case DType::I8: as<int8_t>()[i] = static_cast<int8_t>(v); break;
    case DType::U8: as<uint8_t>()[i] = static_cast<uint8_t>(v); break;
    case DType::Bool: as<uint8_t>()[i] = v != 0; break;
    case DType::I16: as<int16_t>()[i] = static_cast<int16_t>(v); break;
    case DType::U16: as<uint16_t>()[i] = static_cast<uint16_t>(v); break;
    case DType::I32: as<int32_t>()[i] = static_cast<int32_t>(v); break;
    case DType::U32: as<uint32_t>()[i] = static_cast<uint32_t>(v); break;
    case DType::I64: as<int64_t>()[i] = static_cast<int64_t>(v); break;
    case DType::U64: as<uint64_t>()[i] = static_cast<uint64_t>(v); break;
    default: internal_error << "set_f64 on " << dtype_name(dtype_);
  }
}

std::vector<int64_t> Tensor::to_i64_vector() const {
  std::vector<int64_t> v(static_cast<size_t>(numel()));
  for (int64_t i = 0; i < numel(); ++i) v[i] = get_i64(i);
  return v;
}

Tensor Tensor::from_i64(const std::vector<int64_t> &v, std::vector<int64_t> shape) {
  Tensor t(DType::I64, std::move(shape));
  internal_assert(t.numel() == static_cast<int64_t>(v.size()));
  if (!v.empty()) std::memcpy(t.data(), v.data(), v.size() * 8);
  return t;
}

Tensor Tensor::scalar_f32(float v) {
  Tensor t(DType::F32, {});
  *t.as<float>() = v;
  return t;
}

}  // namespace kiln
