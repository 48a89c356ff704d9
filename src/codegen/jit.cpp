#include "codegen/jit.h"

#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/raw_ostream.h>

#include "runtime/scratch.h"
#include "runtime/thread_pool.h"
#include "support/error.h"

namespace kiln {

namespace {
std::string error_text(llvm::Error e) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << e;
  return os.str();
}
}  // namespace

struct Jit::Impl {
  std::unique_ptr<ObjectCompiler> objects;
  std::unique_ptr<llvm::orc::LLJIT> jit;
  int module_count = 0;
};

Jit::Jit(const std::string &target, bool kernel_cache) : impl_(std::make_unique<Impl>()) {
  impl_->objects = std::make_unique<ObjectCompiler>(target, kernel_cache, /*runnable=*/true);
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  internal_assert(static_cast<bool>(jtmb)) << error_text(jtmb.takeError());
  auto jit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(*jtmb)).create();
  internal_assert(static_cast<bool>(jit)) << error_text(jit.takeError());
  impl_->jit = std::move(*jit);
  auto &jd = impl_->jit->getMainJITDylib();
  auto gen = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
      impl_->jit->getDataLayout().getGlobalPrefix());
  internal_assert(static_cast<bool>(gen)) << error_text(gen.takeError());
  jd.addGenerator(std::move(*gen));
  // The runtime ABI that generated code calls, bound explicitly (no -rdynamic needed).
  llvm::orc::MangleAndInterner mangle(impl_->jit->getExecutionSession(), impl_->jit->getDataLayout());
  llvm::orc::SymbolMap syms;
  syms[mangle("kiln_parallel_for")] = llvm::JITEvaluatedSymbol(
      llvm::pointerToJITTargetAddress(&kiln_parallel_for), llvm::JITSymbolFlags::Exported);
  syms[mangle("kiln_scratch_alloc")] = llvm::JITEvaluatedSymbol(
      llvm::pointerToJITTargetAddress(&kiln_scratch_alloc), llvm::JITSymbolFlags::Exported);
  syms[mangle("kiln_scratch_free")] = llvm::JITEvaluatedSymbol(
      llvm::pointerToJITTargetAddress(&kiln_scratch_free), llvm::JITSymbolFlags::Exported);
  llvm::cantFail(jd.define(llvm::orc::absoluteSymbols(std::move(syms))));
}

Jit::~Jit() = default;

const JitCacheStats &Jit::cache_stats() const { return impl_->objects->cache_stats(); }
int Jit::vector_bits() const { return impl_->objects->vector_bits(); }
int Jit::vector_registers() const { return impl_->objects->vector_registers(); }
const std::string &Jit::target() const { return impl_->objects->target(); }

std::map<std::string, KernelFn> Jit::compile(const std::vector<Kernel> &kernels, const JitOptions &opts) {
  std::map<std::string, KernelFn> out;
  if (kernels.empty()) return out;
  std::string prefix = "kiln" + std::to_string(impl_->module_count++) + "_";
  std::vector<ObjectGroup> groups = impl_->objects->compile(kernels, opts, prefix);
  for (size_t g = 0; g < groups.size(); ++g) {
    bool hit = groups[g].from_cache;
    llvm::Error err = impl_->jit->addObjectFile(llvm::MemoryBuffer::getMemBufferCopy(groups[g].object, groups[g].name));
    if (err && hit) {
      // A cached object that passed its checksum but that ORC rejects: compile it afresh.
      llvm::consumeError(std::move(err));
      std::vector<Kernel> part;
      size_t n = groups.size();
      for (size_t i = g; i < kernels.size(); i += n) part.push_back(kernels[i]);
      ObjectGroup fresh = impl_->objects->compile_uncached(part, opts, prefix + "retry" + std::to_string(g));
      err = impl_->jit->addObjectFile(llvm::MemoryBuffer::getMemBufferCopy(fresh.object, fresh.name));
    }
    internal_assert(!err) << error_text(std::move(err));
  }
  for (auto &k : kernels) {
    auto sym = impl_->jit->lookup(k.name);
    internal_assert(static_cast<bool>(sym)) << error_text(sym.takeError());
    out[k.name] = sym->toPtr<KernelFn>();
  }
  return out;
}

}  // namespace kiln
