// Element types. Numeric values match ONNX TensorProto.DataType so import is a cast.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace kiln {

enum class DType : uint8_t {
  Undefined = 0,
  F32 = 1,
  U8 = 2,
  I8 = 3,
  U16 = 4,
  I16 = 5,
  I32 = 6,
  I64 = 7,
  String = 8,
  Bool = 9,
  F16 = 10,
  F64 = 11,
  U32 = 12,
  U64 = 13,
  BF16 = 16,
};

size_t dtype_size(DType t);           // bytes per element; 0 for String/Undefined
const char *dtype_name(DType t);      // "f32", "i64", ...
DType dtype_from_name(const std::string &s);  // inverse of dtype_name; Undefined if unknown
bool dtype_is_float(DType t);
bool dtype_is_signed_int(DType t);
bool dtype_is_unsigned_int(DType t);
inline bool dtype_is_int(DType t) { return dtype_is_signed_int(t) || dtype_is_unsigned_int(t); }
bool dtype_valid(int onnx_type);  // a value kiln supports

// IEEE half and bfloat16 conversions used by constant folding, npy I/O and the runtime.
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
float bf16_to_float(uint16_t b);
uint16_t float_to_bf16(float f);

}  // namespace kiln
