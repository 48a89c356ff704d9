#include "support/npy.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "support/error.h"

namespace kiln {

namespace {

struct Descr {
  const char *code;
  DType dtype;
};
const Descr kDescrs[] = {
    {"<f4", DType::F32}, {"<f8", DType::F64}, {"<f2", DType::F16}, {"|i1", DType::I8},
    {"|u1", DType::U8},  {"<i2", DType::I16}, {"<u2", DType::U16}, {"<i4", DType::I32},
    {"<u4", DType::U32}, {"<i8", DType::I64}, {"<u8", DType::U64}, {"|b1", DType::Bool},
};

std::string header_value(const std::string &h, const std::string &key, const std::string &path) {
  size_t k = h.find("'" + key + "'");
  user_assert(k != std::string::npos) << path << ": .npy header lacks '" << key << "'";
  size_t colon = h.find(':', k);
  user_assert(colon != std::string::npos) << path << ": malformed .npy header";
  size_t s = h.find_first_not_of(' ', colon + 1);
  user_assert(s != std::string::npos) << path << ": malformed .npy header";
  size_t e;
  if (h[s] == '(') {
    e = h.find(')', s);
    user_assert(e != std::string::npos) << path << ": malformed shape in .npy header";
    return h.substr(s, e - s + 1);
  }
  e = h.find_first_of(",}", s);
  user_assert(e != std::string::npos) << path << ": malformed .npy header";
  return h.substr(s, e - s);
}

}  // namespace

Tensor read_npy(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  user_assert(f.good()) << "cannot open '" << path << "'";
  char magic[8];
  f.read(magic, 8);
  user_assert(f.gcount() == 8 && std::memcmp(magic, "\x93NUMPY", 6) == 0)
      << path << ": not a .npy file";
  uint32_t hlen = 0;
  if (magic[6] == 1) {
    unsigned char b[2];
    f.read(reinterpret_cast<char *>(b), 2);
    hlen = b[0] | (b[1] << 8);
  } else {
    unsigned char b[4];
    f.read(reinterpret_cast<char *>(b), 4);
    hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  }
  user_assert(f.good() && hlen < (1u << 20)) << path << ": bad .npy header length";
  std::string h(hlen, '\0');
  f.read(h.data(), hlen);
  user_assert(static_cast<uint32_t>(f.gcount()) == hlen) << path << ": truncated .npy header";

  std::string descr = header_value(h, "descr", path);
  user_assert(descr.size() >= 2) << path << ": bad dtype";
  descr = descr.substr(1, descr.size() - 2);
  DType dt = DType::Undefined;
  for (const auto &d : kDescrs) {
    if (descr == d.code) dt = d.dtype;
  }
  user_assert(dt != DType::Undefined) << path << ": unsupported .npy dtype '" << descr << "'";
  user_assert(header_value(h, "fortran_order", path) == "False")
      << path << ": Fortran-order .npy files are not supported";
  std::string sh = header_value(h, "shape", path);
  std::vector<int64_t> shape;
  std::stringstream ss(sh.substr(1, sh.size() - 2));
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    size_t a = tok.find_first_not_of(' ');
    if (a == std::string::npos) continue;
    try {
      shape.push_back(std::stoll(tok.substr(a)));
    } catch (...) {
      user_error << path << ": bad shape " << sh;
    }
  }
  Tensor t(dt, shape);
  f.read(static_cast<char *>(t.data()), static_cast<std::streamsize>(t.nbytes()));
  user_assert(static_cast<size_t>(f.gcount()) == t.nbytes())
      << path << ": data is shorter than shape " << shape_str(shape) << " needs";
  return t;
}

void write_npy(const std::string &path, const Tensor &t) {
  const char *code = nullptr;
  for (const auto &d : kDescrs) {
    if (d.dtype == t.dtype()) code = d.code;
  }
  Tensor conv = t;
  if (t.dtype() == DType::BF16) {
    conv = Tensor(DType::F32, t.shape());
    for (int64_t i = 0; i < t.numel(); ++i) conv.set_f64(i, t.get_f64(i));
    code = "<f4";
  }
  user_assert(code != nullptr) << "cannot write dtype " << dtype_name(t.dtype()) << " to .npy";
  std::string shape = "(";
  for (size_t i = 0; i < t.shape().size(); ++i) shape += std::to_string(t.shape()[i]) + ", ";
  if (t.shape().size() > 1) shape.resize(shape.size() - 1), shape.back() = ')';
  else if (t.shape().size() == 1) shape.resize(shape.size() - 1), shape.back() = ',', shape += ")";
  else shape += ")";
  std::string h = std::string("{'descr': '") + code + "', 'fortran_order': False, 'shape': " +
                  shape + ", }";
  size_t total = 10 + h.size() + 1;
  h += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::ofstream f(path, std::ios::binary);
  user_assert(f.good()) << "cannot write '" << path << "'";
  f.write("\x93NUMPY\x01\x00", 8);
  unsigned char len[2] = {static_cast<unsigned char>(h.size() & 0xff),
                          static_cast<unsigned char>(h.size() >> 8)};
  f.write(reinterpret_cast<char *>(len), 2);
  f.write(h.data(), static_cast<std::streamsize>(h.size()));
  f.write(static_cast<const char *>(conv.data()), static_cast<std::streamsize>(conv.nbytes()));
  user_assert(f.good()) << "failed writing '" << path << "'";
}

}  // namespace kiln
