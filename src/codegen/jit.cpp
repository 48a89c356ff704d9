#include "codegen/jit.h"

#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/TargetParser/Host.h>

#include <mutex>

#include "codegen/codegen_llvm.h"
#include "runtime/thread_pool.h"
#include "support/error.h"

namespace kiln {

namespace {
void init_llvm() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
  });
}

std::string error_text(llvm::Error e) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << e;
  return os.str();
}
}  // namespace

struct Jit::Impl {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  std::unique_ptr<llvm::TargetMachine> tm;
  int module_count = 0;
};

Jit::Jit() : impl_(std::make_unique<Impl>()) {
  init_llvm();
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  internal_assert(static_cast<bool>(jtmb)) << error_text(jtmb.takeError());
  jtmb->setCodeGenOptLevel(llvm::CodeGenOpt::Aggressive);
  auto tm = jtmb->createTargetMachine();
  internal_assert(static_cast<bool>(tm)) << error_text(tm.takeError());
  impl_->tm = std::move(*tm);
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
  llvm::cantFail(jd.define(llvm::orc::absoluteSymbols(std::move(syms))));
}

Jit::~Jit() = default;

std::string Jit::host_cpu() { return llvm::sys::getHostCPUName().str(); }

std::string Jit::host_features() {
  llvm::StringMap<bool> f;
  std::string s;
  if (!llvm::sys::getHostCPUFeatures(f)) return s;
  for (auto &kv : f) {
    if (!s.empty()) s += ",";
    s += (kv.second ? "+" : "-") + kv.first().str();
  }
  return s;
}

std::map<std::string, KernelFn> Jit::compile(const std::vector<Kernel> &kernels, const JitOptions &opts) {
  std::map<std::string, KernelFn> out;
  if (kernels.empty()) return out;
  auto ctx = std::make_unique<llvm::LLVMContext>();
  auto m = std::make_unique<llvm::Module>("kiln" + std::to_string(impl_->module_count++), *ctx);
  m->setDataLayout(impl_->jit->getDataLayout());
  m->setTargetTriple(impl_->tm->getTargetTriple().str());
  emit_kernels(*m, kernels, impl_->tm->getTargetCPU().str(), impl_->tm->getTargetFeatureString().str());
  optimize_module(*m, *impl_->tm, opts.llvm_opt_level);
  if (!opts.dump_llvm_ir_path.empty()) {
    std::error_code ec;
    llvm::raw_fd_ostream os(opts.dump_llvm_ir_path, ec, llvm::sys::fs::OF_Text);
    if (!ec) m->print(os, nullptr);
  }
  llvm::Error err = impl_->jit->addIRModule(llvm::orc::ThreadSafeModule(std::move(m), std::move(ctx)));
  internal_assert(!err) << error_text(std::move(err));
  for (auto &k : kernels) {
    auto sym = impl_->jit->lookup(k.name);
    internal_assert(static_cast<bool>(sym)) << error_text(sym.takeError());
    out[k.name] = sym->toPtr<KernelFn>();
  }
  return out;
}

}  // namespace kiln
