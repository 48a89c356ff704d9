// A dense, row-major tensor: dtype, concrete shape and shared storage. Used for
// initializers, folded constants, runtime values and .npy I/O. Copying a Tensor shares
// its storage; clone() copies the bytes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/dtype.h"

namespace kiln {

int64_t shape_numel(const std::vector<int64_t> &shape);  // checked against overflow
std::string shape_str(const std::vector<int64_t> &shape);  // "1x3x224x224", "scalar"

class Tensor {
 public:
  Tensor() = default;
  // Allocates zero-initialized storage (64-byte aligned).
  Tensor(DType dtype, std::vector<int64_t> shape);
  // Wraps memory owned by the caller; the caller keeps it alive.
  static Tensor borrow(DType dtype, std::vector<int64_t> shape, void *data);
  // Shares `storage` (at least nbytes, 64-byte aligned; its contents are kept as they are).
  static Tensor over(DType dtype, std::vector<int64_t> shape, std::shared_ptr<void> storage);

  DType dtype() const { return dtype_; }
  const std::vector<int64_t> &shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool defined() const { return dtype_ != DType::Undefined; }

  void *data() { return data_; }
  const void *data() const { return data_; }
  template <typename T>
  T *as() { return static_cast<T *>(data_); }
  template <typename T>
  const T *as() const { return static_cast<const T *>(data_); }

  std::vector<std::string> &strings() { return *strings_; }
  const std::vector<std::string> &strings() const { return *strings_; }

  // The owned storage (null for borrowed and string tensors); shared by copies.
  const std::shared_ptr<void> &storage() const { return storage_; }

  Tensor clone() const;
  // Same storage, new shape with the same element count.
  Tensor reshaped(std::vector<int64_t> shape) const;

  // Element i converted to double / int64 (any numeric dtype).
  double get_f64(int64_t i) const;
  int64_t get_i64(int64_t i) const;
  void set_f64(int64_t i, double v);
  std::vector<int64_t> to_i64_vector() const;

  static Tensor from_i64(const std::vector<int64_t> &v, std::vector<int64_t> shape);
  static Tensor scalar_f32(float v);

 private:
  DType dtype_ = DType::Undefined;
  std::vector<int64_t> shape_;
  std::shared_ptr<void> storage_;
  void *data_ = nullptr;
  std::shared_ptr<std::vector<std::string>> strings_;
};

}  // namespace kiln
