// Scalar and vector element types of the Loop IR.
#pragma once
#include <cstdint>
#include <string>

#include "support/dtype.h"

namespace kiln {

struct Type {
  enum Code : uint8_t { Int, UInt, Float, BFloat };
  Code code = Int;
  uint8_t bits = 32;
  uint16_t lanes = 1;

  static Type i(int bits, int lanes = 1) { return {Int, static_cast<uint8_t>(bits), static_cast<uint16_t>(lanes)}; }
  static Type u(int bits, int lanes = 1) { return {UInt, static_cast<uint8_t>(bits), static_cast<uint16_t>(lanes)}; }
  static Type f(int bits, int lanes = 1) { return {Float, static_cast<uint8_t>(bits), static_cast<uint16_t>(lanes)}; }
  static Type bf16(int lanes = 1) { return {BFloat, 16, static_cast<uint16_t>(lanes)}; }
  static Type boolean(int lanes = 1) { return u(1, lanes); }
  static Type index() { return i(64); }

  bool is_float() const { return code == Float || code == BFloat; }
  bool is_int() const { return code == Int; }
  bool is_uint() const { return code == UInt; }
  bool is_bool() const { return code == UInt && bits == 1; }
  bool is_vector() const { return lanes > 1; }
  Type element() const { return {code, bits, 1}; }
  Type with_lanes(int l) const { return {code, bits, static_cast<uint16_t>(l)}; }
  bool operator==(const Type &o) const { return code == o.code && bits == o.bits && lanes == o.lanes; }
  bool operator!=(const Type &o) const { return !(*this == o); }
  std::string str() const;  // "f32", "i64x8", "bool"
};

// Storage type of a tensor element (bool is stored as u8, 1 byte).
Type type_of(DType t);
// Scalar type a computation on dtype t uses: f16/bf16 compute in f32, bool as bool.
Type compute_type_of(DType t);

}  // namespace kiln
