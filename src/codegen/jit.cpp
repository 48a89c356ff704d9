#include "codegen/jit.h"

#include <llvm/Config/llvm-config.h>
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

#include <algorithm>
#include <mutex>
#include <optional>
#include <thread>

#include "codegen/codegen_llvm.h"
#include "codegen/kernel_cache.h"
#include "runtime/thread_pool.h"
#include "support/error.h"

namespace kiln {

namespace {

// Part of every kernel-cache key. Bump it whenever the object code made from the same
// Loop IR changes: codegen_llvm.cpp, the optimization pipeline, the target machine setup.
constexpr int kCodegenVersion = 1;

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
  bool kernel_cache = true;
  std::string cache_salt;  // what the cache key takes from the target, LLVM and kiln
  JitCacheStats cache_stats;
};

Jit::Jit(const std::string &target, bool kernel_cache) : impl_(std::make_unique<Impl>()) {
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
  impl_->kernel_cache = kernel_cache;
  impl_->cache_salt = "kiln codegen " + std::to_string(kCodegenVersion) + "|LLVM " LLVM_VERSION_STRING "|" +
                      impl_->tm->getTargetTriple().str() + "|" + impl_->tm->getTargetCPU().str() + "|" +
                      impl_->tm->getTargetFeatureString().str();
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

const JitCacheStats &Jit::cache_stats() const { return impl_->cache_stats; }

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
  // Kernels are split into one group per core and compiled to object files in parallel
  // (or loaded from the kernel cache); ORC then only links them.
  size_t groups = std::min<size_t>(kernels.size() / 4 + 1, static_cast<size_t>(std::max(1, num_threads())));
  if (!opts.dump_llvm_ir_path.empty()) groups = 1;
  std::vector<std::vector<Kernel>> parts(groups);
  for (size_t i = 0; i < kernels.size(); ++i) parts[i % groups].push_back(kernels[i]);
  std::string cache_dir =
      impl_->kernel_cache && opts.kernel_cache && opts.dump_llvm_ir_path.empty() ? kernel_cache_dir() : "";
  std::string salt = impl_->cache_salt + "|O" + std::to_string(opts.llvm_opt_level);
  std::vector<std::string> keys(groups);
  std::vector<std::unique_ptr<llvm::MemoryBuffer>> objects(groups);
  std::vector<char> hit(groups, 0), stored(groups, 0);  // not vector<bool>: written from threads
  std::vector<std::string> errors(groups);
  int module = impl_->module_count++;
  auto build = [&](size_t g) {
    objects[g] = compile_object(parts[g], "kiln" + std::to_string(module) + "_" + std::to_string(g), *impl_->jtmb,
                                impl_->jit->getDataLayout(), opts.llvm_opt_level, opts.dump_llvm_ir_path);
    if (!cache_dir.empty()) stored[g] = store_cached_object(cache_dir, keys[g], objects[g]->getBuffer());
  };
  auto work = [&](size_t g) {
    try {
      if (!cache_dir.empty()) {
        keys[g] = kernel_cache_key(parts[g], salt);
        objects[g] = load_cached_object(cache_dir, keys[g]);
        hit[g] = objects[g] != nullptr;
      }
      if (!hit[g]) build(g);
    } catch (const std::exception &e) {
      errors[g] = e.what();
    }
  };
  std::vector<std::thread> threads;
  for (size_t g = 1; g < groups; ++g) threads.emplace_back(work, g);
  work(0);
  for (auto &t : threads) t.join();
  for (auto &e : errors) internal_assert(e.empty()) << e;
  for (size_t g = 0; g < groups; ++g) {
    llvm::Error err = impl_->jit->addObjectFile(std::move(objects[g]));
    if (err && hit[g]) {
      // A cached object that passed its checksum but that ORC rejects: compile it afresh
      // (overwriting the file).
      llvm::consumeError(std::move(err));
      hit[g] = 0;
      build(g);
      err = impl_->jit->addObjectFile(std::move(objects[g]));
    }
    internal_assert(!err) << error_text(std::move(err));
  }
  if (!cache_dir.empty()) {
    size_t hits = std::count(hit.begin(), hit.end(), 1);
    impl_->cache_stats.hits += hits;
    impl_->cache_stats.misses += groups - hits;
    if (std::count(stored.begin(), stored.end(), 1)) trim_kernel_cache(cache_dir);
  }
  for (auto &k : kernels) {
    auto sym = impl_->jit->lookup(k.name);
    internal_assert(static_cast<bool>(sym)) << error_text(sym.takeError());
    out[k.name] = sym->toPtr<KernelFn>();
  }
  return out;
}

}  // namespace kiln
