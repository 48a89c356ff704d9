#include "runtime/model_library.h"

#include <dlfcn.h>
#include <elf.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

#include "runtime/cpu_features.h"
#include "runtime/scratch.h"
#include "runtime/thread_pool.h"
#include "support/error.h"

namespace kiln {

namespace {

using ParallelFor = decltype(&kiln_parallel_for);
using ScratchAlloc = decltype(&kiln_scratch_alloc);
using ScratchFree = decltype(&kiln_scratch_free);

const char *machine_name(uint16_t m) {
  switch (m) {
    case EM_X86_64: return "x86_64";
    case EM_AARCH64: return "aarch64";
    case EM_386: return "i386";
    case EM_ARM: return "arm";
    case EM_RISCV: return "riscv";
    default: return "an unknown architecture";
  }
}

// Checks what dlopen would otherwise crash or give a cryptic message on: a file that is
// not a 64-bit ELF shared object, one for another architecture, and one cut short (a
// mapping past the end of a file raises SIGBUS when touched).
void check_elf(const std::string &path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  user_assert(f) << "cannot open model library '" << path << "'";
  auto size = static_cast<uint64_t>(f.tellg());
  f.seekg(0);
  Elf64_Ehdr eh{};
  f.read(reinterpret_cast<char *>(&eh), sizeof eh);
  user_assert(f && std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0)
      << "'" << path << "' is not a kiln model library (not an ELF shared library)";
  user_assert(eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_type == ET_DYN)
      << "'" << path << "' is not a kiln model library (not a 64-bit shared library)";
  const char *mine = host_arch();
  user_assert(std::strcmp(machine_name(eh.e_machine), mine) == 0)
      << "'" << path << "' was built for " << machine_name(eh.e_machine) << ", but this machine is " << mine
      << "; compile it with --target native (or run it on the machine it was built for)";
  user_assert(eh.e_shoff + uint64_t{eh.e_shnum} * eh.e_shentsize <= size)
      << "'" << path << "' is truncated (" << size << " bytes; its section table ends at "
      << eh.e_shoff + uint64_t{eh.e_shnum} * eh.e_shentsize << ")";
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph{};
    f.seekg(static_cast<std::streamoff>(eh.e_phoff + uint64_t(i) * eh.e_phentsize));
    f.read(reinterpret_cast<char *>(&ph), sizeof ph);
    user_assert(f && ph.p_offset + ph.p_filesz <= size) << "'" << path << "' is truncated (" << size << " bytes)";
  }
}

}  // namespace

LibraryContents read_model_library(const std::string &path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  user_assert(f) << "cannot open model library '" << path << "'";
  auto size = static_cast<uint64_t>(f.tellg());
  auto read = [&](uint64_t off, void *dst, uint64_t n) {
    user_assert(off <= size && n <= size - off) << "'" << path << "' is truncated";
    f.seekg(static_cast<std::streamoff>(off));
    f.read(static_cast<char *>(dst), static_cast<std::streamsize>(n));
    user_assert(f.good()) << "cannot read '" << path << "'";
  };
  Elf64_Ehdr eh{};
  read(0, &eh, sizeof eh);
  user_assert(std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 && eh.e_ident[EI_CLASS] == ELFCLASS64)
      << "'" << path << "' is not a kiln model library (not a 64-bit ELF file)";
  std::vector<Elf64_Shdr> sh(eh.e_shnum);
  for (int i = 0; i < eh.e_shnum; ++i) read(eh.e_shoff + uint64_t(i) * eh.e_shentsize, &sh[i], sizeof(Elf64_Shdr));
  // The dynamic symbol table names the blob; its address maps to a file offset through the
  // section that holds it.
  uint64_t data_addr = 0, size_addr = 0;
  for (auto &s : sh) {
    if (s.sh_type != SHT_DYNSYM || s.sh_link >= sh.size() || s.sh_entsize != sizeof(Elf64_Sym)) continue;
    const Elf64_Shdr &strtab = sh[s.sh_link];
    std::string names(strtab.sh_size, '\0');
    read(strtab.sh_offset, names.data(), names.size());
    for (uint64_t k = 0; k < s.sh_size / sizeof(Elf64_Sym); ++k) {
      Elf64_Sym sym{};
      read(s.sh_offset + k * sizeof sym, &sym, sizeof sym);
      if (sym.st_name >= names.size()) continue;
      const char *n = names.c_str() + sym.st_name;
      if (!std::strcmp(n, "kiln_model_data")) data_addr = sym.st_value;
      if (!std::strcmp(n, "kiln_model_data_size")) size_addr = sym.st_value;
    }
  }
  user_assert(data_addr && size_addr) << "'" << path << "' is a shared library but not a kiln model library";
  auto file_offset = [&](uint64_t addr) -> uint64_t {
    for (auto &s : sh) {
      if (s.sh_type != SHT_NOBITS && s.sh_addr && addr >= s.sh_addr && addr < s.sh_addr + s.sh_size) {
        return s.sh_offset + (addr - s.sh_addr);
      }
    }
    user_error << "'" << path << "': model data outside the file's sections";
    return 0;
  };
  uint64_t n = 0;
  read(file_offset(size_addr), &n, sizeof n);
  user_assert(n <= size) << "'" << path << "' is truncated";
  LibraryContents out;
  out.blob.reset(static_cast<uint8_t *>(std::aligned_alloc(64, std::max<uint64_t>(64, (n + 63) / 64 * 64))), std::free);
  user_assert(out.blob != nullptr) << "out of memory reading '" << path << "'";
  read(file_offset(data_addr), out.blob.get(), n);
  out.payload = deserialize_model(out.blob.get(), n);
  return out;
}

bool is_elf_file(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  char magic[4] = {};
  f.read(magic, 4);
  return f && std::memcmp(magic, ELFMAG, SELFMAG) == 0;
}

std::unique_ptr<ModelLibrary> ModelLibrary::load(const std::string &path) {
  check_elf(path);
  std::unique_ptr<ModelLibrary> lib(new ModelLibrary());
  // dlopen searches the library path for names without a slash; a file name is meant here.
  std::string p = path.find('/') == std::string::npos ? "./" + path : path;
  lib->handle_ = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib->handle_) {
    const char *e = dlerror();
    user_error << "cannot load model library '" << path << "': " << (e ? e : "dlopen failed");
  }
  auto *data = static_cast<const uint8_t *>(dlsym(lib->handle_, "kiln_model_data"));
  auto *size = static_cast<const uint64_t *>(dlsym(lib->handle_, "kiln_model_data_size"));
  auto *pf = static_cast<ParallelFor *>(dlsym(lib->handle_, "kiln_runtime_parallel_for"));
  auto *sa = static_cast<ScratchAlloc *>(dlsym(lib->handle_, "kiln_runtime_scratch_alloc"));
  auto *sf = static_cast<ScratchFree *>(dlsym(lib->handle_, "kiln_runtime_scratch_free"));
  user_assert(data && size && pf) << "'" << path << "' is a shared library but not a kiln model library";
  ModelLibraryInfo info = read_model_info(data, *size);  // an older format version is refused here
  user_assert(sa && sf) << "'" << path << "' lacks the kernel scratch entry points; compile the model again with this kiln";
  user_assert(info.arch == host_arch()) << "'" << path << "' was compiled for " << info.arch << ", not " << host_arch();
  auto missing = missing_cpu_features(info.cpu_features);
  if (!missing.empty()) {
    std::string list;
    for (auto &m : missing) list += (list.empty() ? "" : ", ") + m;
    user_error << "'" << path << "' was compiled for target " << info.target << " and needs " << list
               << ", which this CPU lacks; compile it with --target native on this machine (or x86-64-v3 for AVX2)";
  }
  *pf = &kiln_parallel_for;
  *sa = &kiln_scratch_alloc;
  *sf = &kiln_scratch_free;
  lib->payload_ = deserialize_model(data, *size);
  lib->runner_ = std::make_unique<GraphRunner>(*lib->payload_.model.graph, nullptr);
  void *handle = lib->handle_;
  lib->runner_->bind(lib->payload_.kernels, [&](const std::string &name) {
    auto fn = reinterpret_cast<KernelFn>(dlsym(handle, name.c_str()));
    user_assert(fn) << "corrupt model library '" << path << "': kernel " << name << " is missing";
    return fn;
  });
  return lib;
}

ModelLibrary::~ModelLibrary() {
  runner_.reset();
  payload_ = ModelPayload();
  if (handle_) dlclose(handle_);
}

std::vector<Tensor> ModelLibrary::run(const std::map<std::string, Tensor> &inputs) const {
  return runner_->run(order_inputs(graph(), inputs), nullptr);
}

}  // namespace kiln
