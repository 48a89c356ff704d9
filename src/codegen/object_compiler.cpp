#include "codegen/object_compiler.h"

#include <llvm/Config/llvm-config.h>
#include <llvm/IR/Constants.h>
#include <llvm/IR/GlobalVariable.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Target/TargetOptions.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/TargetParser/Triple.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <thread>

#include "codegen/codegen_llvm.h"
#include "codegen/kernel_cache.h"
#include "runtime/cpu_features.h"
#include "runtime/thread_pool.h"
#include "support/error.h"

namespace kiln {

namespace {

// Part of every kernel-cache key. Bump it whenever the object code made from the same
// Loop IR changes: codegen_llvm.cpp, the optimization pipeline, the target machine setup.
constexpr int kCodegenVersion = 3;

void init_llvm() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeAllTargetInfos();
    llvm::InitializeAllTargets();
    llvm::InitializeAllTargetMCs();
    llvm::InitializeAllAsmPrinters();
  });
}

bool has_feature(const std::string &features, const std::string &f) {
  return ("," + features + ",").find(",+" + f + ",") != std::string::npos;
}

}  // namespace

std::string host_cpu_name() { return llvm::sys::getHostCPUName().str(); }

std::string host_cpu_features() {
  llvm::StringMap<bool> f;
  std::string s;
  if (!llvm::sys::getHostCPUFeatures(f)) return s;
  std::vector<std::string> items;
  for (auto &kv : f) items.push_back((kv.second ? "+" : "-") + kv.first().str());
  std::sort(items.begin(), items.end());
  for (auto &i : items) s += (s.empty() ? "" : ",") + i;
  return s;
}

struct ObjectCompiler::Impl {
  std::string target, triple, arch, cpu, features;
  const llvm::Target *llvm_target = nullptr;
  int vector_bits = 128;
  bool kernel_cache = true;
  std::string cache_salt;
  JitCacheStats cache_stats;

  // One TargetMachine per compile thread: they are not thread-safe.
  std::unique_ptr<llvm::TargetMachine> machine() const {
    llvm::TargetOptions to;
    auto *tm = llvm_target->createTargetMachine(triple, cpu, features, to, llvm::Reloc::PIC_, std::nullopt,
                                                llvm::CodeGenOpt::Default);
    internal_assert(tm) << "cannot create a target machine for " << triple;
    return std::unique_ptr<llvm::TargetMachine>(tm);
  }
};

ObjectCompiler::ObjectCompiler(const std::string &target, bool kernel_cache, bool runnable)
    : impl_(std::make_unique<Impl>()) {
  init_llvm();
  Impl &I = *impl_;
  I.target = target;
  std::string host = host_cpu_features();
  if (target == "native") {
    I.triple = llvm::sys::getProcessTriple();
    I.cpu = host_cpu_name();
    I.features = host;
  } else if (target == "x86-64-v3" || target == "x86-64-v4") {
    I.triple = "x86_64-unknown-linux-gnu";
    I.cpu = target;
    std::string need = target == "x86-64-v4" ? "avx512f" : "avx2";
    user_assert(!runnable || has_feature(host, need))
        << "target " << target << " needs " << need << ", which this CPU lacks; use --target native";
  } else if (target == "aarch64-linux-gnu") {
    user_assert(!runnable) << "target " << target << " cannot run on this machine; compile a library with "
                           << "`kiln compile --target " << target << "` and run it there";
    I.triple = "aarch64-unknown-linux-gnu";
    I.cpu = "generic";
    I.features = "+neon,+fp-armv8";
  } else {
    user_error << "unknown target '" << target << "' (native, x86-64-v3, x86-64-v4"
               << (runnable ? "" : ", aarch64-linux-gnu") << ")";
  }
  llvm::Triple t(I.triple);
  user_assert(!runnable || t.getArch() == llvm::Triple(llvm::sys::getProcessTriple()).getArch())
      << "target " << target << " is not this machine's architecture";
  I.arch = t.getArch() == llvm::Triple::aarch64 ? "aarch64" : t.getArch() == llvm::Triple::x86_64 ? "x86_64" : t.getArchName().str();
  std::string err;
  I.llvm_target = llvm::TargetRegistry::lookupTarget(I.triple, err);
  internal_assert(I.llvm_target) << "LLVM has no target " << I.triple << ": " << err;
  auto tm = I.machine();
  // What the subtarget really enables (a CPU name implies features the string omits).
  std::string effective = tm->getTargetFeatureString().str();
  if (I.arch == "x86_64") {
    bool avx512 = target == "x86-64-v4" || has_feature(effective, "avx512f");
    bool avx2 = avx512 || target == "x86-64-v3" || has_feature(effective, "avx2");
    I.vector_bits = avx512 ? 512 : avx2 ? 256 : 128;
  }
  I.kernel_cache = kernel_cache;
  I.cache_salt = "kiln codegen " + std::to_string(kCodegenVersion) + "|LLVM " LLVM_VERSION_STRING "|" + I.triple +
                 "|" + I.cpu + "|" + I.features;
}

ObjectCompiler::~ObjectCompiler() = default;

const std::string &ObjectCompiler::target() const { return impl_->target; }
const std::string &ObjectCompiler::triple() const { return impl_->triple; }
const std::string &ObjectCompiler::arch() const { return impl_->arch; }
int ObjectCompiler::vector_bits() const { return impl_->vector_bits; }
int ObjectCompiler::vector_registers() const { return impl_->arch == "aarch64" || impl_->vector_bits >= 512 ? 32 : 16; }
const JitCacheStats &ObjectCompiler::cache_stats() const { return impl_->cache_stats; }
const std::string &ObjectCompiler::cache_salt() const { return impl_->cache_salt; }

std::vector<std::string> ObjectCompiler::cpu_features() const {
  std::vector<std::string> out;
  if (impl_->arch == "aarch64") return {"neon"};
  // x86-64-v3/v4 name CPUs, not features: spell out what they imply.
  const std::string &t = impl_->target;
  std::string f = impl_->features;
  if (t == "x86-64-v3" || t == "x86-64-v4") f = "+sse4.2,+avx,+avx2,+fma,+f16c";
  if (t == "x86-64-v4") f += ",+avx512f,+avx512bw,+avx512vl,+avx512dq,+avx512cd";
  for (const std::string &k : known_cpu_features()) {
    if (has_feature(f, k)) out.push_back(k);
  }
  return out;
}

namespace {

// Lowers a group of kernels to one in-memory object file: LLVM IR, the optimization
// pipeline, machine code. Runs on its own thread with its own context and TargetMachine.
std::string compile_object(const std::vector<Kernel> &kernels, const std::string &name,
                                                   llvm::TargetMachine &tm, int opt_level, const std::string &dump_path) {
  llvm::LLVMContext ctx;
  llvm::Module m(name, ctx);
  m.setDataLayout(tm.createDataLayout());
  m.setTargetTriple(tm.getTargetTriple().str());
  emit_kernels(m, kernels, tm.getTargetCPU().str(), tm.getTargetFeatureString().str());
  optimize_module(m, tm, opt_level);
  if (!dump_path.empty()) {
    std::error_code ec;
    llvm::raw_fd_ostream os(dump_path, ec, llvm::sys::fs::OF_Text);
    if (!ec) m.print(os, nullptr);
  }
  llvm::SmallVector<char, 0> obj;
  llvm::raw_svector_ostream os(obj);
  llvm::legacy::PassManager pm;
  internal_assert(!tm.addPassesToEmitFile(pm, os, nullptr, llvm::CGFT_ObjectFile)) << "no object emission";
  pm.run(m);
  return std::string(obj.data(), obj.size());
}

}  // namespace

ObjectGroup ObjectCompiler::compile_uncached(const std::vector<Kernel> &kernels, const JitOptions &opts,
                                             const std::string &name) {
  auto tm = impl_->machine();
  return {name, compile_object(kernels, name, *tm, opts.llvm_opt_level, opts.dump_llvm_ir_path), false};
}

std::vector<ObjectGroup> ObjectCompiler::compile(const std::vector<Kernel> &kernels, const JitOptions &opts,
                                                 const std::string &prefix) {
  if (kernels.empty()) return {};
  // Kernels are split into one group per core and compiled to object files in parallel
  // (or loaded from the kernel cache).
  size_t groups = std::min<size_t>(kernels.size() / 4 + 1, static_cast<size_t>(std::max(1, num_threads())));
  if (!opts.dump_llvm_ir_path.empty()) groups = 1;
  std::vector<std::vector<Kernel>> parts(groups);
  for (size_t i = 0; i < kernels.size(); ++i) parts[i % groups].push_back(kernels[i]);
  std::string cache_dir =
      impl_->kernel_cache && opts.kernel_cache && opts.dump_llvm_ir_path.empty() ? kernel_cache_dir() : "";
  std::string salt = impl_->cache_salt + "|O" + std::to_string(opts.llvm_opt_level);
  std::vector<ObjectGroup> out(groups);
  std::vector<char> stored(groups, 0);  // not vector<bool>: written from threads
  std::vector<std::string> errors(groups);
  auto work = [&](size_t g) {
    try {
      std::string key;
      if (!cache_dir.empty()) {
        key = kernel_cache_key(parts[g], salt);
        if (auto cached = load_cached_object(cache_dir, key)) {
          out[g] = {prefix + std::to_string(g), cached->getBuffer().str(), true};
        }
      }
      if (!out[g].from_cache) {
        out[g] = compile_uncached(parts[g], opts, prefix + std::to_string(g));
        if (!cache_dir.empty()) stored[g] = store_cached_object(cache_dir, key, out[g].object);
      }
    } catch (const std::exception &e) {
      errors[g] = e.what();
    }
  };
  std::vector<std::thread> threads;
  for (size_t g = 1; g < groups; ++g) threads.emplace_back(work, g);
  work(0);
  for (auto &t : threads) t.join();
  for (auto &e : errors) internal_assert(e.empty()) << e;
  if (!cache_dir.empty()) {
    size_t hits = 0;
    for (auto &o : out) hits += o.from_cache;
    impl_->cache_stats.hits += hits;
    impl_->cache_stats.misses += groups - hits;
    if (std::count(stored.begin(), stored.end(), 1)) trim_kernel_cache(cache_dir);
  }
  return out;
}

std::string ObjectCompiler::model_data_object(const std::string &blob) {
  auto tm = impl_->machine();
  llvm::LLVMContext ctx;
  llvm::Module m("kiln_model_data", ctx);
  m.setDataLayout(tm->createDataLayout());
  m.setTargetTriple(tm->getTargetTriple().str());
  llvm::IRBuilder<> b(ctx);
  auto *data = llvm::ConstantDataArray::getRaw(llvm::StringRef(blob), blob.size(), b.getInt8Ty());
  auto *gv = new llvm::GlobalVariable(m, data->getType(), true, llvm::GlobalValue::ExternalLinkage, data,
                                      "kiln_model_data");
  gv->setAlignment(llvm::Align(64));
  new llvm::GlobalVariable(m, b.getInt64Ty(), true, llvm::GlobalValue::ExternalLinkage, b.getInt64(blob.size()),
                           "kiln_model_data_size");
  // The runtime entry points the kernels call, each a hidden function of that name calling
  // through a pointer `kiln_runtime_<name>` that the runtime sets at load (so the library
  // has no undefined kiln symbols):
  //   void kiln_parallel_for(body, closure, begin, end)
  //   void *kiln_scratch_alloc(i64 bytes), void kiln_scratch_free(void *)
  auto *i64 = b.getInt64Ty();
  auto forwarder = [&](const char *name, const char *slot_name, llvm::FunctionType *ty) {
    auto *slot = new llvm::GlobalVariable(m, b.getPtrTy(), false, llvm::GlobalValue::ExternalLinkage,
                                          llvm::ConstantPointerNull::get(b.getPtrTy()), slot_name);
    auto *fwd = llvm::Function::Create(ty, llvm::Function::ExternalLinkage, name, &m);
    fwd->setVisibility(llvm::GlobalValue::HiddenVisibility);
    b.SetInsertPoint(llvm::BasicBlock::Create(ctx, "entry", fwd));
    llvm::Value *target = b.CreateLoad(b.getPtrTy(), slot);
    std::vector<llvm::Value *> args;
    for (auto &a : fwd->args()) args.push_back(&a);
    llvm::Value *r = b.CreateCall(ty, target, args);
    if (ty->getReturnType()->isVoidTy()) {
      b.CreateRetVoid();
    } else {
      b.CreateRet(r);
    }
  };
  forwarder("kiln_parallel_for", "kiln_runtime_parallel_for", llvm::FunctionType::get(b.getVoidTy(), {b.getPtrTy(), b.getPtrTy(), i64, i64}, false));
  forwarder("kiln_scratch_alloc", "kiln_runtime_scratch_alloc", llvm::FunctionType::get(b.getPtrTy(), {i64}, false));
  forwarder("kiln_scratch_free", "kiln_runtime_scratch_free", llvm::FunctionType::get(b.getVoidTy(), {b.getPtrTy()}, false));
  llvm::SmallVector<char, 0> obj;
  llvm::raw_svector_ostream os(obj);
  llvm::legacy::PassManager pm;
  internal_assert(!tm->addPassesToEmitFile(pm, os, nullptr, llvm::CGFT_ObjectFile)) << "no object emission";
  pm.run(m);
  return std::string(obj.data(), obj.size());
}

}  // namespace kiln
