#include "codegen/kernel_cache.h"

#include <llvm/ADT/ArrayRef.h>
#include <llvm/ADT/SmallString.h>
#include <llvm/ADT/StringExtras.h>
#include <llvm/Object/ObjectFile.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/SHA256.h>
#include <llvm/Support/raw_ostream.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <tuple>

#include "support/error.h"

namespace kiln {

namespace {

namespace fs = std::filesystem;

constexpr size_t kDigestBytes = 32;

std::array<uint8_t, kDigestBytes> digest_of(llvm::StringRef data) {
  return llvm::SHA256::hash(llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(data.data()), data.size()));
}

// What to_string(Kernel) leaves out but codegen reads, in a pre-order walk: the type of
// every expression (Var, Load and Call print none; a Call's type is not always its
// arguments') and the exact bits of float constants (printed to 9 significant digits,
// which is lossy for f64). Every node kind is listed, so -Wswitch flags a new one.
class KeySupplement {
 public:
  std::string out;

  void expr(const Expr &e) {
    if (!e.defined()) {
      out += '-';
      return;
    }
    Type t = e.type();
    out += static_cast<char>(e.node_type());
    out += static_cast<char>(t.code);
    out += static_cast<char>(t.bits);
    append(t.lanes);
    switch (e.node_type()) {
      case IRNodeType::IntImm: append(e.as<IntImm>()->value); return;
      case IRNodeType::FloatImm: append(e.as<FloatImm>()->value); return;
      case IRNodeType::Var: return;
      case IRNodeType::Add: return binary<Add>(e);
      case IRNodeType::Sub: return binary<Sub>(e);
      case IRNodeType::Mul: return binary<Mul>(e);
      case IRNodeType::Div: return binary<Div>(e);
      case IRNodeType::Mod: return binary<Mod>(e);
      case IRNodeType::Min: return binary<Min>(e);
      case IRNodeType::Max: return binary<Max>(e);
      case IRNodeType::EQ: return binary<EQ>(e);
      case IRNodeType::NE: return binary<NE>(e);
      case IRNodeType::LT: return binary<LT>(e);
      case IRNodeType::LE: return binary<LE>(e);
      case IRNodeType::GT: return binary<GT>(e);
      case IRNodeType::GE: return binary<GE>(e);
      case IRNodeType::And: return binary<And>(e);
      case IRNodeType::Or: return binary<Or>(e);
      case IRNodeType::Not: return expr(e.as<Not>()->a);
      case IRNodeType::Select: {
        auto *n = e.as<Select>();
        expr(n->cond);
        expr(n->true_value);
        expr(n->false_value);
        return;
      }
      case IRNodeType::Cast: return expr(e.as<Cast>()->value);
      case IRNodeType::Load: return expr(e.as<Load>()->index);
      case IRNodeType::Ramp: {
        auto *n = e.as<Ramp>();
        expr(n->base);
        expr(n->stride);
        return;
      }
      case IRNodeType::Broadcast: return expr(e.as<Broadcast>()->value);
      case IRNodeType::Call:
        for (auto &a : e.as<Call>()->args) expr(a);
        return;
      case IRNodeType::Let: {
        auto *n = e.as<Let>();
        expr(n->value);
        expr(n->body);
        return;
      }
#define X(n) case IRNodeType::n:
        KILN_STMT_NODES(X)
#undef X
        break;
    }
    internal_error << "kernel cache key: a statement where an expression was expected";
  }

  void stmt(const Stmt &s) {
    if (!s.defined()) {
      out += '-';
      return;
    }
    out += static_cast<char>(s.node_type());
    switch (s.node_type()) {
      case IRNodeType::Store: {
        auto *n = s.as<Store>();
        expr(n->index);
        expr(n->value);
        return;
      }
      case IRNodeType::For: {
        auto *n = s.as<For>();
        expr(n->min);
        expr(n->extent);
        stmt(n->body);
        return;
      }
      case IRNodeType::LetStmt: {
        auto *n = s.as<LetStmt>();
        expr(n->value);
        stmt(n->body);
        return;
      }
      case IRNodeType::Block:
        for (auto &st : s.as<Block>()->stmts) stmt(st);
        out += ';';
        return;
      case IRNodeType::IfThenElse: {
        auto *n = s.as<IfThenElse>();
        expr(n->cond);
        stmt(n->then_case);
        stmt(n->else_case);
        return;
      }
      case IRNodeType::Allocate: {
        auto *n = s.as<Allocate>();
        expr(n->size);
        stmt(n->body);
        return;
      }
#define X(n) case IRNodeType::n:
        KILN_EXPR_NODES(X)
#undef X
        break;
    }
    internal_error << "kernel cache key: an expression where a statement was expected";
  }

 private:
  template <typename T>
  void append(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out.append(b, sizeof(T));
  }
  template <typename N>
  void binary(const Expr &e) {
    auto *n = e.as<N>();
    expr(n->a);
    expr(n->b);
  }
};

// Length-prefixed, so that no two sequences of parts hash the same bytes.
void add_part(llvm::SHA256 &h, llvm::StringRef part) {
  uint64_t n = part.size();
  h.update(llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(&n), sizeof(n)));
  h.update(part);
}

std::string path_of(const std::string &dir, const std::string &key) { return dir + "/" + key + ".o"; }

}  // namespace

std::string kernel_cache_dir() {
  const char *off = std::getenv("KILN_KERNEL_CACHE");
  if (off && std::string(off) == "0") return "";
  const char *root = std::getenv("KILN_CACHE");
  if (root && *root) return std::string(root) + "/kernels";
  const char *home = std::getenv("HOME");
  if (home && *home) return std::string(home) + "/.cache/kiln/kernels";
  return "";
}

std::string kernel_cache_key(const std::vector<Kernel> &kernels, const std::string &salt) {
  llvm::SHA256 h;
  add_part(h, salt);
  for (const Kernel &k : kernels) {
    add_part(h, to_string(k));
    KeySupplement sup;
    for (auto &b : k.buffers) {
      sup.out += static_cast<char>(b.type.code);
      sup.out += static_cast<char>(b.type.bits);
    }
    sup.stmt(k.body);
    add_part(h, sup.out);
  }
  auto d = h.final();
  return llvm::toHex(llvm::ArrayRef<uint8_t>(d.data(), d.size()), /*LowerCase=*/true);
}

std::unique_ptr<llvm::MemoryBuffer> load_cached_object(const std::string &dir, const std::string &key) {
  std::string path = path_of(dir, key);
  // Read, not mapped: another process truncating a mapped file would be a SIGBUS.
  auto file = llvm::MemoryBuffer::getFile(path, /*IsText=*/false, /*RequiresNullTerminator=*/false,
                                          /*IsVolatile=*/true);
  if (!file || (*file)->getBufferSize() <= kDigestBytes) return nullptr;
  llvm::StringRef all = (*file)->getBuffer();
  llvm::StringRef object = all.drop_back(kDigestBytes);
  auto d = digest_of(object);
  if (std::memcmp(d.data(), all.data() + object.size(), kDigestBytes) != 0) return nullptr;
  auto buf = llvm::MemoryBuffer::getMemBufferCopy(object, path);
  auto parsed = llvm::object::ObjectFile::createObjectFile(buf->getMemBufferRef());
  if (!parsed) {
    llvm::consumeError(parsed.takeError());
    return nullptr;
  }
  std::error_code ec;
  fs::last_write_time(path, fs::file_time_type::clock::now(), ec);
  return buf;
}

bool store_cached_object(const std::string &dir, const std::string &key, llvm::StringRef object) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return false;
  int fd = -1;
  llvm::SmallString<256> tmp;
  if (llvm::sys::fs::createUniqueFile(dir + "/" + key + ".tmp-%%%%%%%%", fd, tmp)) return false;
  bool ok;
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    auto d = digest_of(object);
    os << object;
    os.write(reinterpret_cast<const char *>(d.data()), d.size());
    os.close();
    ok = !os.has_error();
    os.clear_error();  // a pending error would be fatal in the destructor
  }
  if (ok) ok = !llvm::sys::fs::rename(tmp, path_of(dir, key));
  if (!ok) llvm::sys::fs::remove(tmp);
  return ok;
}

void trim_kernel_cache(const std::string &dir, uint64_t max_bytes, uint64_t trimmed_bytes) {
  std::vector<std::tuple<fs::file_time_type, uint64_t, fs::path>> files;
  uint64_t total = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    uint64_t size = it->file_size(fec);
    if (fec) continue;
    auto mtime = it->last_write_time(fec);
    if (fec) continue;
    files.emplace_back(mtime, size, it->path());
    total += size;
  }
  if (total <= max_bytes) return;
  std::sort(files.begin(), files.end());
  for (auto &[mtime, size, path] : files) {
    if (total <= trimmed_bytes) break;
    std::error_code rec;
    fs::remove(path, rec);  // gone either way when another process removed it first
    total -= size;
  }
}

}  // namespace kiln
