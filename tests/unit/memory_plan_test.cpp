// plan_memory (compiler/memory_plan.cpp) and the executor's arenas: buffers alive at the
// same step never share a byte, offsets are 64-byte aligned, buffers that are never alive
// together share memory; a model runs the same from a freshly recorded plan and from its
// arena on later runs (poisoned with KILN_POISON_ARENA=1 so nothing may rely on zeroed
// memory): at every batch size, with sizes that follow input values, with a value passed
// out of the arena through a Loop, and from two threads at once. Graph outputs the caller
// has dropped are recycled; held ones are never overwritten.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <thread>

#include "runtime/memory_plan.h"
#include "opt_levels.h"

namespace kiln {
namespace {

using test::compile_at, test::expect_close, test::f32_list, test::random_f32;

size_t align64(size_t n) { return (n + 63) / 64 * 64; }

// Checks every property a plan of `bufs` must have; returns the peak of live bytes (a
// lower bound for any plan's arena).
size_t check_plan(const std::vector<BufferLife> &bufs, const MemoryPlan &p) {
  EXPECT_EQ(p.offsets.size(), bufs.size());
  size_t total = 0, end = 0;
  int steps = 0;
  for (size_t i = 0; i < bufs.size(); ++i) {
    total += align64(bufs[i].bytes);
    end = std::max(end, p.offsets[i] + bufs[i].bytes);
    steps = std::max(steps, bufs[i].last + 1);
    EXPECT_EQ(p.offsets[i] % 64, 0u) << "buffer " << i;
  }
  EXPECT_EQ(p.total_bytes, total);
  EXPECT_LE(end, p.arena_bytes);
  EXPECT_LE(p.arena_bytes, p.total_bytes);
  for (size_t i = 0; i < bufs.size(); ++i) {
    for (size_t j = i + 1; j < bufs.size(); ++j) {
      const BufferLife &a = bufs[i], &b = bufs[j];
      if (a.bytes == 0 || b.bytes == 0 || a.last < b.first || b.last < a.first) continue;
      bool disjoint = p.offsets[i] + a.bytes <= p.offsets[j] || p.offsets[j] + b.bytes <= p.offsets[i];
      EXPECT_TRUE(disjoint) << "buffers " << i << " [" << a.first << ", " << a.last << "] at " << p.offsets[i] << " + "
                            << a.bytes << " and " << j << " [" << b.first << ", " << b.last << "] at " << p.offsets[j]
                            << " + " << b.bytes;
    }
  }
  size_t peak = 0;
  for (int s = 0; s < steps; ++s) {
    size_t live = 0;
    for (const BufferLife &b : bufs) live += b.first <= s && s <= b.last ? align64(b.bytes) : 0;
    peak = std::max(peak, live);
  }
  EXPECT_GE(p.arena_bytes, peak);
  return peak;
}

TEST(MemoryPlan, RandomLifetimesNeverOverlap) {
  std::mt19937 rng(2024);
  for (int round = 0; round < 1000; ++round) {
    int n = std::uniform_int_distribution<int>(0, 60)(rng), steps = std::uniform_int_distribution<int>(1, 40)(rng);
    // Sizes from empty to ~100 KB, many equal (as in real graphs), some not multiples of 64.
    std::vector<size_t> sizes = {0, 1, 63, 64, 65, 4096, 4100};
    std::vector<BufferLife> bufs(n);
    for (BufferLife &b : bufs) {
      b.bytes = rng() % 3 == 0 ? sizes[rng() % sizes.size()] : rng() % 100000;
      b.first = std::uniform_int_distribution<int>(0, steps - 1)(rng);
      int longest = std::min(steps - 1, b.first + static_cast<int>(rng() % 8));
      b.last = std::uniform_int_distribution<int>(b.first, longest)(rng);
    }
    MemoryPlan p = plan_memory(bufs);
    check_plan(bufs, p);
    if (HasFailure()) {
      ADD_FAILURE() << "round " << round;
      return;
    }
  }
}

TEST(MemoryPlan, DisjointLifetimesShareMemory) {
  // A chain: each buffer dies when the next is made from it, so two are alive at a time.
  std::vector<BufferLife> chain;
  for (int i = 0; i < 6; ++i) chain.push_back({1000, i, i + 1});
  MemoryPlan p = plan_memory(chain);
  EXPECT_EQ(check_plan(chain, p), 2048u);
  EXPECT_EQ(p.total_bytes, 6 * 1024u);
  EXPECT_EQ(p.arena_bytes, 2048u);
  // Largest first, each at the lowest offset that fits beside the buffers alive with it.
  std::vector<BufferLife> bufs = {{100, 0, 1}, {5000, 1, 2}, {300, 2, 3}, {5000, 3, 3}, {200, 0, 3}};
  p = plan_memory(bufs);
  check_plan(bufs, p);
  // Sizes rounded up: 128, 5056, 320, 5056, 256. The two 5056s never meet (both at 0);
  // 320 goes above them, 256 above that, and 128 into the gap below 256.
  EXPECT_EQ(p.offsets, (std::vector<size_t>{5056, 0, 5056, 0, 5376}));
  EXPECT_EQ(p.arena_bytes, 5632u);
  EXPECT_LT(p.arena_bytes, p.total_bytes);
  // Nothing to place.
  EXPECT_EQ(plan_memory({}).arena_bytes, 0u);
}

// Sets an environment variable for the scope, restoring it after.
class ScopedEnv {
 public:
  ScopedEnv(const char *name, const char *value) : name_(name) {
    if (const char *old = std::getenv(name)) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char *name_;
  std::optional<std::string> old_;
};

void expect_same(const std::vector<Tensor> &want, const std::vector<Tensor> &got, const std::string &what) {
  ASSERT_EQ(want.size(), got.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(want[i].shape(), got[i].shape()) << what;
    EXPECT_EQ(std::memcmp(want[i].data(), got[i].data(), want[i].nbytes()), 0) << what << ": output " << i;
  }
}

// Intermediates from many kinds of kernel: a conv, two poolings, a reshape, a MatMul with
// K = 700 in blocks (partial sums parked in its output), reductions, a softmax, a concat;
// outputs at the end, in the middle (%sm, read by the concat) and read by a later node (%f).
std::string arena_model(const std::string &b, std::mt19937 &rng) {
  return "model {opset = 13}\ngraph g(%x: f32[" + b + ", 4, 12, 14], %v: f32[" + b + ", 700]) {\n" +
         "  init %w: f32[8, 4, 3, 3] = " + f32_list(random_f32({8, 4, 3, 3}, rng, -0.5, 0.5)) + "\n" +
         "  init %cb: f32[8] = " + f32_list(random_f32({8}, rng)) + "\n" +
         "  init %w2: f32[336, 10] = " + f32_list(random_f32({336, 10}, rng, -0.2, 0.2)) + "\n" +
         "  init %w3: f32[700, 10] = " + f32_list(random_f32({700, 10}, rng, -0.2, 0.2)) + "\n" +
         "  init %flat: i64[2] = [0, -1]\n"
         "  %c: ? = Conv(%x, %w, %cb) {pads = [1, 1, 1, 1]}\n"
         "  %r: ? = Relu(%c)\n"
         "  %p: ? = MaxPool(%r) {kernel_shape = [2, 2], strides = [2, 2]}\n"
         "  %f: ? = Reshape(%p, %flat)\n"
         "  %a: ? = AveragePool(%r) {kernel_shape = [2, 2], strides = [2, 2]}\n"
         "  %m1: ? = MatMul(%f, %w2)\n"
         "  %h: ? = Tanh(%v)\n"
         "  %m2: ? = MatMul(%h, %w3)\n"
         "  %s: ? = Add(%m1, %m2)\n"
         "  %sm: ? = Softmax(%s) {axis = -1}\n"
         "  %mean: ? = ReduceMean(%a) {axes = [2, 3], keepdims = 0}\n"
         "  %cat: ? = Concat(%sm, %mean) {axis = 1}\n"
         "  %y: ? = Mul(%cat, %cat)\n"
         "  return %y, %sm, %f\n}\n";
}

std::map<std::string, Tensor> arena_inputs(int64_t batch, std::mt19937 &rng) {
  return {{"x", random_f32({batch, 4, 12, 14}, rng, -1, 1)}, {"v", random_f32({batch, 700}, rng, -1, 1)}};
}

TEST(MemoryPlan, SymbolicBatchRunsFromItsArena) {
  ScopedEnv poison("KILN_POISON_ARENA", "1");
  std::mt19937 rng(3);
  std::string text = arena_model("n", rng);
  std::map<int64_t, std::map<std::string, Tensor>> in = {{1, arena_inputs(1, rng)}, {3, arena_inputs(3, rng)}};
  for (int level : {0, 1}) {
    auto model = compile_at(text, level);
    EXPECT_FALSE(model->static_memory_plan()) << "the batch is symbolic";
    // Fresh compiles: each batch's first run records its plan and uses no arena.
    std::map<int64_t, std::vector<Tensor>> fresh;
    for (int64_t b : {1, 3}) fresh[b] = compile_at(text, level)->run(in[b]);
    // One model at batch 1, 3, 1 again, twice each: a recording run, then arena runs.
    // The outputs are checked after all runs: none may live in an arena a later run reuses.
    std::vector<std::pair<int64_t, std::vector<Tensor>>> runs;
    for (int64_t b : {1, 3, 1}) {
      for (int rep = 0; rep < 2; ++rep) runs.emplace_back(b, model->run(in[b]));
    }
    for (auto &[b, out] : runs) {
      expect_same(fresh[b], out, "-O" + std::to_string(level) + " batch " + std::to_string(b));
    }
    if (level == 1) {
      auto o0 = compile_at(text, 0);
      for (int64_t b : {1, 3}) {
        auto want = o0->run(in[b]);
        for (size_t i = 0; i < want.size(); ++i) expect_close(want[i], fresh[b][i], 1e-5, 1e-6, "-O1 vs -O0");
      }
    }
  }
}

TEST(MemoryPlan, ShapesThatDependOnValues) {
  // The signature is the input shapes, but here the intermediates' sizes follow the value
  // of %e: a run whose buffers outgrow the recorded plan must still be right, and so must
  // the smaller runs after it.
  ScopedEnv poison("KILN_POISON_ARENA", "1");
  std::string text =
      "model {opset = 13}\ngraph g(%x: f32[16, 24], %e: i64[1]) {\n"
      "  init %zero: i64[1] = [0]\n  init %axis: i64[1] = [0]\n"
      "  %s: ? = Slice(%x, %zero, %e, %axis)\n  %r: ? = Relu(%s)\n  %t: ? = Transpose(%r)\n"
      "  %m: ? = MatMul(%t, %r)\n  %y: ? = Sigmoid(%m)\n  %sum: ? = ReduceSum(%r) {keepdims = 0}\n"
      "  return %y, %sum\n}\n";
  std::mt19937 rng(6);
  Tensor x = random_f32({16, 24}, rng);
  for (int level : {0, 1}) {
    auto model = compile_at(text, level);
    for (int64_t e : {2, 16, 5, 2}) {
      std::map<std::string, Tensor> in = {{"x", x}, {"e", Tensor::from_i64({e}, {1})}};
      auto want = compile_at(text, level)->run(in);
      expect_same(want, model->run(in), "-O" + std::to_string(level) + " e = " + std::to_string(e));
    }
  }
}

TEST(MemoryPlan, ValuesPassedThroughControlFlowLeaveTheArena) {
  // With a trip count of 0 the Loop's result is its initial value %a, in the arena and
  // dead once the Loop ran: %c and %t may take its place while %b is still to be read.
  ScopedEnv poison("KILN_POISON_ARENA", "1");
  std::string text =
      "model {opset = 13}\ngraph g(%x: f32[n, 64], %trips: i64[]) {\n"
      "  %a: ? = Relu(%x)\n"
      "  %b: f32[n, 64] = Loop(%trips, _, %a) {body = graph body(%i: i64[], %go: bool[], %acc: f32[n, 64]) {\n"
      "    %next: f32[n, 64] = Add(%acc, %x)\n    %keep: bool[] = Identity(%go)\n    return %keep, %next\n  }}\n"
      "  %c: ? = Neg(%x)\n  %t: ? = Tanh(%x)\n  %d: ? = Add(%b, %c)\n  %y: ? = Mul(%d, %t)\n"
      "  return %y, %b\n}\n";
  std::mt19937 rng(8);
  Tensor x = random_f32({5, 64}, rng);
  for (int level : {0, 1}) {
    auto model = compile_at(text, level);
    for (int64_t trips : {0, 2, 0}) {
      std::map<std::string, Tensor> in = {{"x", x}, {"trips", Tensor::from_i64({trips}, {})}};
      auto want = compile_at(text, level)->run(in);
      for (int rep = 0; rep < 2; ++rep) {
        expect_same(want, model->run(in), "-O" + std::to_string(level) + " trips " + std::to_string(trips));
      }
    }
  }
}

TEST(MemoryPlan, StaticShapesPlanAtCompileTime) {
  ScopedEnv poison("KILN_POISON_ARENA", "1");
  std::mt19937 rng(4);
  std::string text = arena_model("2", rng);
  auto in = arena_inputs(2, rng);
  auto o0 = compile_at(text, 0)->run(in);
  auto model = compile_at(text, 1);
  auto plan = model->static_memory_plan();
  ASSERT_TRUE(plan);
  EXPECT_GT(plan->total_bytes, 0u);
  EXPECT_LT(plan->arena_bytes, plan->total_bytes);
  // Planned at compile time, so even the first run uses the (poisoned) arena.
  auto first = model->run(in);
  for (size_t i = 0; i < o0.size(); ++i) expect_close(o0[i], first[i], 1e-5, 1e-6, "-O1 vs -O0");
  expect_same(first, model->run(in), "second run");
}

TEST(MemoryPlan, GraphOutputBuffersAreRecycledOnceDropped) {
  // A graph output's buffer returns to the model when the caller drops the tensor: the
  // next run of that signature writes its output there (poisoned first, so the kernel must
  // write every element). Outputs the caller still holds are never written again.
  ScopedEnv poison("KILN_POISON_ARENA", "1");
  std::mt19937 rng(9);
  for (const char *batch : {"3", "n"}) {
    std::string text = std::string("model {opset = 13}\ngraph g(%x: f32[") + batch +
                       ", 40, 24]) {\n  %r: ? = Relu(%x)\n  %y: ? = Sigmoid(%r)\n  %z: ? = Add(%y, %x)\n"
                       "  return %y, %z\n}\n";
    auto model = compile_at(text, 1);
    std::vector<std::map<std::string, Tensor>> in;
    std::vector<std::vector<Tensor>> want;
    for (int i = 0; i < 3; ++i) {
      in.push_back({{"x", random_f32({3, 40, 24}, rng, -1, 1)}});
      want.push_back(compile_at(text, 0)->run(in.back()));
    }
    // Held across runs: each run's outputs stay what they were.
    std::vector<std::vector<Tensor>> held;
    for (int k = 0; k < 6; ++k) held.push_back(model->run(in[k % 3]));
    for (int k = 0; k < 6; ++k) {
      for (size_t o = 0; o < 2; ++o) {
        expect_close(want[k % 3][o], held[k][o], 1e-5, 1e-6, "held run " + std::to_string(k));
      }
    }
    // Dropped: the next run reuses the buffers and still computes every element.
    const void *y = held.back()[0].data(), *z = held.back()[1].data();
    held.clear();
    auto again = model->run(in[1]);
    EXPECT_TRUE(again[0].data() == y || again[0].data() == z) << "batch " << batch << ": output 0 not recycled";
    EXPECT_TRUE(again[1].data() == y || again[1].data() == z) << "batch " << batch << ": output 1 not recycled";
    for (size_t o = 0; o < 2; ++o) expect_close(want[1][o], again[o], 1e-5, 1e-6, "recycled");
    // Held by a copy of the tensor (shared storage): not recycled.
    Tensor keep = again[0];
    again.clear();
    auto next = model->run(in[2]);
    EXPECT_NE(next[0].data(), keep.data());
    EXPECT_NE(next[1].data(), keep.data());
    expect_close(want[1][0], keep, 1e-5, 1e-6, "kept");
    for (size_t o = 0; o < 2; ++o) expect_close(want[2][o], next[o], 1e-5, 1e-6, "after kept");
  }
}

TEST(MemoryPlan, ConcurrentRunsGetTheirOwnArenas) {
  ScopedEnv poison("KILN_POISON_ARENA", "1");
  std::mt19937 rng(5);
  for (const char *batch : {"2", "n"}) {
    std::string text = arena_model(batch, rng);
    std::vector<std::map<std::string, Tensor>> in;
    for (int i = 0; i < 4; ++i) in.push_back(arena_inputs(2, rng));
    // Expected outputs: another compile, run from one thread.
    std::vector<std::vector<Tensor>> want;
    auto ref = compile_at(text, 1);
    for (auto &i : in) want.push_back(ref->run(i));
    auto model = compile_at(text, 1);
    // Two threads, 100 runs each on different inputs, so that runs overlap (with the
    // symbolic batch, from the first: both may record the plan).
    std::atomic<int> wrong{0};
    auto worker = [&](int t) {
      for (int k = 0; k < 100; ++k) {
        int i = (k + 2 * t) % 4;
        auto got = model->run(in[i]);
        for (size_t o = 0; o < got.size(); ++o) {
          if (std::memcmp(got[o].data(), want[i][o].data(), got[o].nbytes()) != 0) ++wrong;
        }
      }
    };
    std::thread a(worker, 0), b(worker, 1);
    a.join();
    b.join();
    EXPECT_EQ(wrong.load(), 0) << "batch " << batch;
  }
}

}  // namespace
}  // namespace kiln
