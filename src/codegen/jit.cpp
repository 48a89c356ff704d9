#include "codegen/jit.h"

#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/TargetParser/Host.h>

#include <mutex>
#include <optional>
#include <thread>

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
  std::optional<llvm::orc::JITTargetMachineBuilder> jtmb;  // one TargetMachine per compile thread
  int module_count = 0;
  std::string target;
  int vector_bits = 128;
};

Jit::Jit(const std::string &target) : impl_(std::make_unique<Impl>()) {
  init_llvm();
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  internal_assert(static_cast<bool>(jtmb)) << error_text(jtmb.takeError());
  impl_->target = target;
  if (target == "native") {
    std::string f = host_features();
    impl_->vector_bits = f.find("+avx512f") != std::string::npos ? 512 : f.find("+avx2") != std::string::npos ? 256 : 128;
  } else if (target == "x86-64-v3" || target == "x86-64-v4") {
    jtmb->setCPU(target);
    jtmb->getFeatures() = llvm::SubtargetFeatures();
    impl_->vector_bits = target == "x86-64-v4" ? 512 : 256;
    std::string need = target == "x86-64-v4" ? "+avx512f" : "+avx2";
    user_assert(host_features().find(need) != std::string::npos)
        << "target " << target << " needs " << need.substr(1) << ", which this CPU lacks; use --target native";
  } else {
    user_error << "unknown target '" << target << "' for in-process compilation (native, x86-64-v3, x86-64-v4)";
  }
  jtmb->setCodeGenOptLevel(llvm::CodeGenOpt::Default);
  auto tm = jtmb->createTargetMachine();
  internal_assert(static_cast<bool>(tm)) << error_text(tm.takeError());
  impl_->tm = std::move(*tm);
  impl_->jtmb = *jtmb;
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

int Jit::vector_bits() const { return impl_->vector_bits; }
const std::string &Jit::target() const { return impl_->target; }

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

namespace {

// Lowers a group of kernels to one in-memory object file: LLVM IR, the optimization
// pipeline, machine code. Runs on its own thread with its own context and TargetMachine.
std::unique_ptr<llvm::MemoryBuffer> compile_object(const std::vector<Kernel> &kernels, const std::string &name,
                                                   llvm::orc::JITTargetMachineBuilder jtmb, const llvm::DataLayout &dl,
                                                   int opt_level, const std::string &dump_path) {
  auto tm = llvm::cantFail(jtmb.createTargetMachine());
  llvm::LLVMContext ctx;
  llvm::Module m(name, ctx);
  m.setDataLayout(dl);
  m.setTargetTriple(tm->getTargetTriple().str());
  emit_kernels(m, kernels, tm->getTargetCPU().str(), tm->getTargetFeatureString().str());
  optimize_module(m, *tm, opt_level);
  if (!dump_path.empty()) {
    std::error_code ec;
    llvm::raw_fd_ostream os(dump_path, ec, llvm::sys::fs::OF_Text);
    if (!ec) m.print(os, nullptr);
  }
  llvm::SmallVector<char, 0> obj;
  llvm::raw_svector_ostream os(obj);
  llvm::legacy::PassManager pm;
  internal_assert(!tm->addPassesToEmitFile(pm, os, nullptr, llvm::CGFT_ObjectFile)) << "no object emission";
  pm.run(m);
  return llvm::MemoryBuffer::getMemBufferCopy(llvm::StringRef(obj.data(), obj.size()), name);
}

}  // namespace

std::map<std::string, KernelFn> Jit::compile(const std::vector<Kernel> &kernels, const JitOptions &opts) {
  std::map<std::string, KernelFn> out;
  if (kernels.empty()) return out;
  // Kernels are split into one group per core and compiled to object files in parallel;
  // ORC then only links them.
  size_t groups = std::min<size_t>(kernels.size() / 4 + 1, static_cast<size_t>(std::max(1, num_threads())));
  if (!opts.dump_llvm_ir_path.empty()) groups = 1;
  std::vector<std::vector<Kernel>> parts(groups);
  for (size_t i = 0; i < kernels.size(); ++i) parts[i % groups].push_back(kernels[i]);
  std::vector<std::unique_ptr<llvm::MemoryBuffer>> objects(groups);
  std::vector<std::string> errors(groups);
  auto work = [&](size_t g) {
    try {
      objects[g] = compile_object(parts[g], "kiln" + std::to_string(impl_->module_count) + "_" + std::to_string(g),
                                  *impl_->jtmb, impl_->jit->getDataLayout(), opts.llvm_opt_level, opts.dump_llvm_ir_path);
    } catch (const std::exception &e) {
      errors[g] = e.what();
    }
  };
  std::vector<std::thread> threads;
  for (size_t g = 1; g < groups; ++g) threads.emplace_back(work, g);
  work(0);
  for (auto &t : threads) t.join();
  ++impl_->module_count;
  for (auto &e : errors) internal_assert(e.empty()) << e;
  for (auto &obj : objects) {
    llvm::Error err = impl_->jit->addObjectFile(std::move(obj));
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
