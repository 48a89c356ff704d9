// The disk kernel cache: a second compile loads every object group instead of running
// LLVM and computes the same bits; damaged files read as misses and are rewritten; with
// the cache off nothing is written; the key sees what the Loop IR printer leaves out.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "codegen/jit.h"
#include "codegen/kernel_cache.h"
#include "compiler/compiler.h"

#include "graph_builder.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

// x: f32[4, 8] -> Relu -> Exp -> Sigmoid -> Tanh -> MatMul(w: 8x5) -> Add(b) -> y: six
// kernels, so more than one object group on a machine with two or more cores.
Model six_kernel_model() {
  test::GraphBuilder b(13, test::NodeStyle::anonymous());
  Value *x = b.input("x", DType::F32, {Dim(4), Dim(8)});
  Tensor w(DType::F32, {8, 5});
  for (int i = 0; i < w.numel(); ++i) w.as<float>()[i] = 0.25f * static_cast<float>(i % 7) - 0.5f;
  Value *v = b.op(OpKind::Relu, {x});
  v = b.op(OpKind::Exp, {v});
  v = b.op(OpKind::Sigmoid, {v});
  v = b.op(OpKind::Tanh, {v});
  v = b.op(OpKind::MatMul, {v, b.constant("w", w)});
  v = b.op(OpKind::Add, {v, b.constant("b", test::f32({1, -2, 3, -4, 5}, {5}))});
  v->name = "y";
  b.output(v);
  return b.model();
}

Tensor input_x() {
  Tensor t(DType::F32, {4, 8});
  for (int i = 0; i < t.numel(); ++i) t.as<float>()[i] = 0.1f * static_cast<float>(i % 11) - 0.4f;
  return t;
}

bool same_bits(const Tensor &a, const Tensor &b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

// Points KILN_CACHE at a fresh directory (the user's cache stays untouched) and turns the
// cache on, restoring both afterwards.
class JitCache : public ::testing::Test {
 protected:
  void SetUp() override {
    save("KILN_CACHE", saved_cache_);
    save("KILN_KERNEL_CACHE", saved_switch_);
    root_ = fs::temp_directory_path() /
            ("kiln_jit_cache_test_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    setenv("KILN_CACHE", root_.c_str(), 1);
    unsetenv("KILN_KERNEL_CACHE");
  }
  void TearDown() override {
    restore("KILN_CACHE", saved_cache_);
    restore("KILN_KERNEL_CACHE", saved_switch_);
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  fs::path kernels_dir() const { return root_ / "kernels"; }
  std::vector<fs::path> cached_files() const {
    std::vector<fs::path> out;
    std::error_code ec;
    for (fs::directory_iterator it(kernels_dir(), ec), end; !ec && it != end; it.increment(ec)) {
      out.push_back(it->path());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  struct Result {
    Tensor y;
    CompileStats stats;
  };
  static Result compile_and_run(bool kernel_cache = true) {
    CompileOptions opts;
    opts.kernel_cache = kernel_cache;
    auto cm = CompiledModel::compile(six_kernel_model(), opts);
    return {cm->run({{"x", input_x()}}).at(0), cm->stats()};
  }

  fs::path root_;

 private:
  static void save(const char *name, std::optional<std::string> &slot) {
    const char *v = std::getenv(name);
    if (v) slot = v;
  }
  static void restore(const char *name, const std::optional<std::string> &slot) {
    if (slot) setenv(name, slot->c_str(), 1);
    else unsetenv(name);
  }
  std::optional<std::string> saved_cache_, saved_switch_;
};

TEST_F(JitCache, SecondCompileLoadsEveryGroupAndComputesTheSameBits) {
  Result reference = compile_and_run(/*kernel_cache=*/false);
  EXPECT_EQ(reference.stats.kernel_cache_hits + reference.stats.kernel_cache_misses, 0u);
  EXPECT_TRUE(cached_files().empty());

  Result cold = compile_and_run();
  EXPECT_EQ(cold.stats.kernel_cache_hits, 0u);
  ASSERT_GE(cold.stats.kernel_cache_misses, 1u);
  auto files = cached_files();
  ASSERT_EQ(files.size(), cold.stats.kernel_cache_misses);
  for (auto &f : files) EXPECT_EQ(f.extension(), ".o") << f;

  Result warm = compile_and_run();
  EXPECT_EQ(warm.stats.kernel_cache_hits, cold.stats.kernel_cache_misses);
  EXPECT_EQ(warm.stats.kernel_cache_misses, 0u);
  EXPECT_EQ(cached_files(), files);
  EXPECT_TRUE(same_bits(cold.y, reference.y));
  EXPECT_TRUE(same_bits(warm.y, reference.y));
}

TEST_F(JitCache, DamagedFilesAreMissesAndAreRewritten) {
  Result reference = compile_and_run(/*kernel_cache=*/false);
  size_t groups = compile_and_run().stats.kernel_cache_misses;
  ASSERT_GE(groups, 1u);
  // Truncated (a header that claims more than the file holds), overwritten with junk, and
  // one flipped byte in the middle (which still parses as an object: only the checksum
  // catches it).
  auto truncate = [](const fs::path &p) { fs::resize_file(p, fs::file_size(p) / 2); };
  auto junk = [](const fs::path &p) {
    std::ofstream(p, std::ios::binary | std::ios::trunc) << std::string(4096, '\x5a');
  };
  auto flip = [](const fs::path &p) {
    std::fstream f(p, std::ios::binary | std::ios::in | std::ios::out);
    auto mid = static_cast<std::streamoff>(fs::file_size(p) / 2);
    f.seekg(mid);
    char c = 0;
    f.get(c);
    f.seekp(mid);
    f.put(static_cast<char>(c ^ 0x40));
  };
  for (auto damage : {+truncate, +junk, +flip}) {
    auto files = cached_files();
    ASSERT_EQ(files.size(), groups);
    for (auto &f : files) damage(f);
    Result r = compile_and_run();
    EXPECT_EQ(r.stats.kernel_cache_hits, 0u);
    EXPECT_EQ(r.stats.kernel_cache_misses, groups);
    EXPECT_TRUE(same_bits(r.y, reference.y));
    Result again = compile_and_run();  // the files were rewritten whole
    EXPECT_EQ(again.stats.kernel_cache_hits, groups);
    EXPECT_TRUE(same_bits(again.y, reference.y));
  }
}

TEST_F(JitCache, OffWritesNothing) {
  setenv("KILN_KERNEL_CACHE", "0", 1);
  Result r = compile_and_run();
  EXPECT_EQ(r.stats.kernel_cache_hits + r.stats.kernel_cache_misses, 0u);
  EXPECT_FALSE(fs::exists(kernels_dir()));
  unsetenv("KILN_KERNEL_CACHE");
  r = compile_and_run(/*kernel_cache=*/false);
  EXPECT_EQ(r.stats.kernel_cache_hits + r.stats.kernel_cache_misses, 0u);
  EXPECT_FALSE(fs::exists(kernels_dir()));
}

TEST_F(JitCache, UnwritableDirectoryOnlySkipsCaching) {
  std::ofstream(root_ / "not_a_dir") << "x";
  setenv("KILN_CACHE", (root_ / "not_a_dir").c_str(), 1);  // kernels/ cannot be created
  Result reference = compile_and_run(/*kernel_cache=*/false);
  Result r = compile_and_run();
  EXPECT_EQ(r.stats.kernel_cache_hits, 0u);
  EXPECT_GE(r.stats.kernel_cache_misses, 1u);
  EXPECT_TRUE(same_bits(r.y, reference.y));
}

TEST_F(JitCache, DumpingLlvmIrBypassesTheCache) {
  Kernel k{"jit_cache_dump", {{"out", Type::f(32)}}, {}, Store::make("out", Expr(1.5), Expr(0))};
  Jit jit;
  JitOptions opts;
  opts.dump_llvm_ir_path = (root_ / "dump.ll").string();
  auto fns = jit.compile({k}, opts);
  float out = 0;
  void *bufs[] = {&out};
  fns.at("jit_cache_dump")(bufs, nullptr);
  EXPECT_EQ(out, 1.5f);
  EXPECT_EQ(jit.cache_stats().hits + jit.cache_stats().misses, 0u);
  EXPECT_TRUE(fs::exists(root_ / "dump.ll"));
  EXPECT_FALSE(fs::exists(kernels_dir()));
}

// Kernels that print the same but compile differently must not share a key.
TEST_F(JitCache, KeySeesWhatThePrinterLeavesOut) {
  auto store = [](Expr v) {
    return Kernel{"k", {{"out", v.type()}, {"in", Type::i(32)}}, {}, Store::make("out", v, Expr(0))};
  };
  // f64 constants that agree in their first 9 digits.
  Kernel a = store(FloatImm::make(Type::f(64), 0.1));
  Kernel b = store(FloatImm::make(Type::f(64), 0.1 + 1e-12));
  ASSERT_EQ(to_string(a), to_string(b));
  EXPECT_NE(kernel_cache_key({a}, ""), kernel_cache_key({b}, ""));
  // A call's type is not printed: the same bits as f32 or as u32.
  Expr bits = Load::make(Type::i(32), "in", Expr(0));
  Kernel c = store(Call::make(Type::f(32), "reinterpret", {bits}));
  Kernel d = store(Call::make(Type::u(32), "reinterpret", {bits}));
  c.buffers[0].type = d.buffers[0].type = Type::i(32);
  ASSERT_EQ(to_string(c), to_string(d));
  EXPECT_NE(kernel_cache_key({c}, ""), kernel_cache_key({d}, ""));
  // And the salt (target, LLVM, codegen version, opt level) and the order of kernels count.
  EXPECT_NE(kernel_cache_key({a}, "O2"), kernel_cache_key({a}, "O3"));
  EXPECT_NE(kernel_cache_key({a, c}, ""), kernel_cache_key({c, a}, ""));
  EXPECT_EQ(kernel_cache_key({a, c}, "x"), kernel_cache_key({a, c}, "x"));
}

TEST_F(JitCache, TrimDeletesTheLeastRecentlyUsed) {
  fs::create_directories(kernels_dir());
  auto now = fs::file_time_type::clock::now();
  for (int i = 0; i < 6; ++i) {
    fs::path p = kernels_dir() / (std::to_string(i) + ".o");
    std::ofstream(p) << std::string(1000, 'x');
    fs::last_write_time(p, now - std::chrono::hours(6 - i));  // 0.o is the oldest
  }
  trim_kernel_cache(kernels_dir().string(), 6000, 5000);  // at the limit: nothing to do
  EXPECT_EQ(cached_files().size(), 6u);
  trim_kernel_cache(kernels_dir().string(), 5500, 3500);
  auto left = cached_files();
  ASSERT_EQ(left.size(), 3u);
  EXPECT_EQ(left[0].filename(), "3.o");
}

}  // namespace
}  // namespace kiln
