// TensorProto -> Tensor. Every size a hostile file claims is checked against the bytes it
// actually provides before anything is allocated, and external data may only be read
// from regular files inside the model's folder.
#include <onnx/onnx_pb.h>

#include <bit>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "onnx/importer.h"
#include "support/error.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

static_assert(std::endian::native == std::endian::little,
              "raw_data and external data are little-endian; add byte swapping");

constexpr uint64_t kMaxTensorBytes = uint64_t{16} << 30;  // same limit as Tensor's

std::string onnx_type_name(int t) {
  switch (t) {
    case onnx::TensorProto_DataType_COMPLEX64: return "complex64";
    case onnx::TensorProto_DataType_COMPLEX128: return "complex128";
    default: return "type " + std::to_string(t);
  }
}

DType proto_dtype(const onnx::TensorProto &p, const std::string &label) {
  int t = p.data_type();
  user_assert(t != onnx::TensorProto_DataType_UNDEFINED) << label << " has no data type";
  user_assert(dtype_valid(t)) << label << " has unsupported data type " << onnx_type_name(t);
  return static_cast<DType>(t);
}

std::vector<int64_t> proto_dims(const onnx::TensorProto &p, const std::string &label) {
  std::vector<int64_t> dims(p.dims().begin(), p.dims().end());
  for (size_t i = 0; i < dims.size(); ++i) {
    user_assert(dims[i] >= 0) << label << ": dimension " << i << " is negative (" << dims[i]
                              << ")";
  }
  return dims;
}

// Element count and byte size of the shape, refusing overflow and absurd sizes.
struct Extent {
  uint64_t numel = 1;
  uint64_t bytes = 0;
};

Extent proto_extent(const std::vector<int64_t> &dims, DType dtype, const std::string &label) {
  Extent e;
  for (int64_t d : dims) {
    uint64_t ud = static_cast<uint64_t>(d);
    user_assert(ud == 0 || e.numel <= std::numeric_limits<uint64_t>::max() / ud)
        << label << ": shape " << shape_str(dims) << " has too many elements";
    e.numel *= ud;
  }
  uint64_t esize = dtype == DType::String ? 1 : dtype_size(dtype);
  user_assert(e.numel <= std::numeric_limits<uint64_t>::max() / esize)
      << label << ": shape " << shape_str(dims) << " has too many elements";
  e.bytes = dtype == DType::String ? 0 : e.numel * esize;
  return e;
}

// Checked after the data was found to match the shape, so that a huge shape with little
// data reports the mismatch; matters for external files, which may really be that big.
Tensor allocate(const std::vector<int64_t> &dims, DType dtype, const Extent &e,
                const std::string &label) {
  uint64_t esize = dtype == DType::String ? 1 : dtype_size(dtype);
  user_assert(e.numel <= kMaxTensorBytes / esize)
      << label << ": shape " << shape_str(dims) << " of " << dtype_name(dtype)
      << " exceeds the 16 GiB per-tensor limit";
  return Tensor(dtype, dims);
}

std::string need_str(const std::vector<int64_t> &dims, DType dtype) {
  return "shape " + shape_str(dims) + " of " + std::string(dtype_name(dtype)) + " needs ";
}

uint64_t parse_u64(const std::string &text, const char *key, const std::string &label) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  user_assert(!text.empty() && ec == std::errc() && end == text.data() + text.size())
      << label << ": external data " << key << " '" << text << "' is not a non-negative integer";
  return v;
}

fs::path without_trailing_slash(fs::path p) {
  if (p.has_relative_path() && p.filename().empty()) p = p.parent_path();
  return p;
}

// Where the external bytes of a tensor live, validated: a regular file inside base_dir
// with [offset, offset + length) inside it.
struct ExternalRange {
  fs::path path;
  uint64_t offset = 0;
  uint64_t length = 0;
};

ExternalRange resolve_external(const onnx::TensorProto &p, const std::string &base_dir,
                               const std::string &label) {
  std::string location;
  std::string offset_text, length_text;
  for (const auto &kv : p.external_data()) {
    if (kv.key() == "location") location = kv.value();
    if (kv.key() == "offset") offset_text = kv.value();
    if (kv.key() == "length") length_text = kv.value();
  }
  user_assert(!location.empty()) << label << ": external data has no 'location'";
  fs::path rel(location);
  user_assert(!rel.is_absolute() && !rel.has_root_name() && !rel.has_root_directory())
      << label << ": external data location '" << location
      << "' is an absolute path; it must be relative to the model's folder";
  for (const auto &part : rel) {
    user_assert(part != "..") << label << ": external data location '" << location
                              << "' must not contain '..'";
  }
  fs::path base = base_dir.empty() ? fs::path(".") : fs::path(base_dir);
  ExternalRange r;
  r.path = base / rel;

  std::error_code ec;
  fs::path canon_base = without_trailing_slash(fs::weakly_canonical(base, ec));
  user_assert(!ec) << label << ": cannot resolve model folder '" << base.string()
                   << "': " << ec.message();
  fs::path canon_file = fs::weakly_canonical(r.path, ec);
  user_assert(!ec) << label << ": cannot resolve external data path '" << r.path.string()
                   << "': " << ec.message();
  auto mismatch =
      std::mismatch(canon_base.begin(), canon_base.end(), canon_file.begin(), canon_file.end());
  user_assert(mismatch.first == canon_base.end())
      << label << ": external data location '" << location << "' resolves to '"
      << canon_file.string() << "', outside the model's folder '" << canon_base.string() << "'";

  user_assert(fs::is_regular_file(r.path, ec))
      << label << ": external data file '" << r.path.string() << "' does not exist";
  uint64_t file_size = fs::file_size(r.path, ec);
  user_assert(!ec) << label << ": cannot read size of external data file '" << r.path.string()
                   << "': " << ec.message();

  r.offset = offset_text.empty() ? 0 : parse_u64(offset_text, "offset", label);
  user_assert(r.offset <= file_size) << label << ": external data offset " << r.offset
                                     << " is past the end of '" << r.path.string() << "' ("
                                     << file_size << " bytes)";
  r.length = length_text.empty() ? file_size - r.offset : parse_u64(length_text, "length", label);
  user_assert(r.length <= file_size - r.offset)
      << label << ": external data range " << r.offset << "+" << r.length
      << " is past the end of '" << r.path.string() << "' (" << file_size << " bytes)";
  return r;
}

void read_external(const ExternalRange &r, void *dst, const std::string &label) {
  if (r.length == 0) return;
  std::ifstream f(r.path, std::ios::binary);
  user_assert(f.good()) << label << ": cannot open external data file '" << r.path.string()
                        << "'";
  f.seekg(static_cast<std::streamoff>(r.offset));
  f.read(static_cast<char *>(dst), static_cast<std::streamsize>(r.length));
  user_assert(f.good() && static_cast<uint64_t>(f.gcount()) == r.length)
      << label << ": short read from external data file '" << r.path.string() << "'";
}

// ONNX stores bools as bytes that should be 0/1; anything else becomes 1.
void normalize_bools(Tensor &t) {
  if (t.dtype() != DType::Bool) return;
  uint8_t *d = t.as<uint8_t>();
  for (int64_t i = 0; i < t.numel(); ++i) d[i] = d[i] != 0;
}

// The typed field the ONNX spec uses for each element type.
struct TypedField {
  const char *name;
  int count;
};

TypedField typed_field(const onnx::TensorProto &p, DType dtype) {
  switch (dtype) {
    case DType::F32: return {"float_data", p.float_data_size()};
    case DType::F64: return {"double_data", p.double_data_size()};
    case DType::I64: return {"int64_data", p.int64_data_size()};
    case DType::U32: case DType::U64: return {"uint64_data", p.uint64_data_size()};
    case DType::String: return {"string_data", p.string_data_size()};
    default: return {"int32_data", p.int32_data_size()};
  }
}

int typed_values_total(const onnx::TensorProto &p) {
  return p.float_data_size() + p.double_data_size() + p.int64_data_size() +
         p.uint64_data_size() + p.string_data_size() + p.int32_data_size();
}

template <typename Dst, typename Field>
void copy_values(Tensor &t, const Field &src) {
  Dst *d = t.as<Dst>();
  for (int i = 0; i < src.size(); ++i) d[i] = static_cast<Dst>(src[i]);
}

void fill_from_typed(Tensor &t, const onnx::TensorProto &p) {
  switch (t.dtype()) {
    case DType::F32: copy_values<float>(t, p.float_data()); break;
    case DType::F64: copy_values<double>(t, p.double_data()); break;
    case DType::I64: copy_values<int64_t>(t, p.int64_data()); break;
    case DType::U64: copy_values<uint64_t>(t, p.uint64_data()); break;
    case DType::U32: copy_values<uint32_t>(t, p.uint64_data()); break;
    case DType::I32: copy_values<int32_t>(t, p.int32_data()); break;
    case DType::I16: copy_values<int16_t>(t, p.int32_data()); break;
    case DType::U16: copy_values<uint16_t>(t, p.int32_data()); break;
    case DType::I8: copy_values<int8_t>(t, p.int32_data()); break;
    case DType::U8: copy_values<uint8_t>(t, p.int32_data()); break;
    case DType::Bool: {
      uint8_t *d = t.as<uint8_t>();
      for (int i = 0; i < p.int32_data_size(); ++i) d[i] = p.int32_data(i) != 0;
      break;
    }
    case DType::F16: case DType::BF16: {
      // int32_data holds the 16-bit patterns.
      uint16_t *d = t.as<uint16_t>();
      for (int i = 0; i < p.int32_data_size(); ++i) d[i] = static_cast<uint16_t>(p.int32_data(i));
      break;
    }
    case DType::String: {
      auto &s = t.strings();
      for (int i = 0; i < p.string_data_size(); ++i) s[i] = p.string_data(i);
      break;
    }
    default: internal_error << "unhandled dtype " << dtype_name(t.dtype());
  }
}

}  // namespace

Tensor tensor_from_proto(const onnx::TensorProto &p, const std::string &base_dir,
                         const std::string &label_in) {
  std::string label = !label_in.empty() ? label_in : "tensor '" + p.name() + "'";
  DType dtype = proto_dtype(p, label);
  std::vector<int64_t> dims = proto_dims(p, label);
  user_assert(!p.has_segment()) << label << ": segmented tensors are not supported";
  Extent ext = proto_extent(dims, dtype, label);

  if (p.data_location() == onnx::TensorProto_DataLocation_EXTERNAL) {
    user_assert(dtype != DType::String) << label << ": string tensors cannot use external data";
    ExternalRange r = resolve_external(p, base_dir, label);
    user_assert(r.length == ext.bytes)
        << label << ": external data has " << r.length << " bytes but " << need_str(dims, dtype)
        << ext.bytes;
    Tensor t = allocate(dims, dtype, ext, label);
    read_external(r, t.data(), label);
    normalize_bools(t);
    return t;
  }

  if (p.has_raw_data()) {
    user_assert(dtype != DType::String) << label << ": string tensors cannot use raw_data";
    const std::string &raw = p.raw_data();
    user_assert(raw.size() == ext.bytes) << label << ": data has " << raw.size() << " bytes but "
                                         << need_str(dims, dtype) << ext.bytes;
    Tensor t = allocate(dims, dtype, ext, label);
    if (!raw.empty()) std::memcpy(t.data(), raw.data(), raw.size());
    normalize_bools(t);
    return t;
  }

  TypedField field = typed_field(p, dtype);
  uint64_t count = static_cast<uint64_t>(field.count);
  if (count != ext.numel) {
    user_assert(count != 0 || typed_values_total(p) == 0)
        << label << " of type " << dtype_name(dtype) << " stores its values in the wrong field ("
        << field.name << " is empty)";
    if (dtype == DType::String || count != 0) {
      user_error << label << ": " << field.name << " has " << count << " elements but "
                 << need_str(dims, dtype) << ext.numel;
    }
    user_error << label << ": data has 0 bytes but " << need_str(dims, dtype) << ext.bytes;
  }
  Tensor t = allocate(dims, dtype, ext, label);
  fill_from_typed(t, p);
  return t;
}

}  // namespace kiln
