// Differential testing of the -O1 schedules and passes against the -O0 reference: a
// text model compiled at both levels, run on the same seeded random inputs, outputs
// compared element by element. Header-only.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "codegen/jit.h"
#include "compiler/compiler.h"
#include "graph/parser.h"

namespace kiln::test {

// Batches stay whole (no split-batch) unless `split_batch`: the kernel tests exercise the
// kernels' sample loops, which model libraries and unsplittable graphs run.
inline std::unique_ptr<CompiledModel> compile_at(const std::string &text, int opt_level,
                                               const std::string &target = "native", bool split_batch = false) {
  CompileOptions o;
  o.opt_level = opt_level;
  o.target = target;
  o.split_batch = split_batch;
  return CompiledModel::compile(parse_model(text), o);
}

inline Tensor random_f32(std::vector<int64_t> shape, std::mt19937 &rng, float lo = -4, float hi = 4) {
  Tensor t(DType::F32, std::move(shape));
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.as<float>()[i] = u(rng);
  return t;
}

// "[v0, v1, ...]" for an init line of a text model.
inline std::string f32_list(const Tensor &t) {
  std::string s = "[";
  char buf[32];
  for (int64_t i = 0; i < t.numel(); ++i) {
    std::snprintf(buf, sizeof buf, "%s%.9g", i ? ", " : "", t.as<float>()[i]);
    s += buf;
  }
  return s + "]";
}

// An init line of a text model: `name` f32[shape] uniform in [-0.5, 0.5).
inline std::string init(const std::string &name, std::vector<int64_t> shape, std::mt19937 &rng) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  return "  init %" + name + ": f32[" + dims + "] = " + f32_list(random_f32(shape, rng, -0.5f, 0.5f)) + "\n";
}

// |got - want| <= atol + rtol * |want| everywhere; NaN where the reference has NaN.
inline void expect_close(const Tensor &want, const Tensor &got, double rtol, double atol, const std::string &what) {
  ASSERT_EQ(want.shape(), got.shape()) << what;
  ASSERT_EQ(want.dtype(), got.dtype()) << what;
  for (int64_t i = 0; i < want.numel(); ++i) {
    double w = want.get_f64(i), g = got.get_f64(i);
    if (std::isnan(w) || std::isinf(w)) {
      ASSERT_TRUE(std::isnan(w) ? std::isnan(g) : g == w) << what << " element " << i << ": " << g << " vs " << w;
      continue;
    }
    ASSERT_NEAR(g, w, atol + rtol * std::fabs(w)) << what << " element " << i;
  }
}

// Runs `text` at -O0 and at -O1 (for the host and, where the host has it, for AVX2, whose
// vectors are 8 f32 wide where AVX-512's are 16) on `inputs` and compares every output.
inline void expect_o1_matches_o0(const std::string &text, const std::map<std::string, Tensor> &inputs,
                                 double rtol = 2e-6, double atol = 1e-6) {
  auto ref = compile_at(text, 0)->run(inputs);
  bool avx2 = Jit::host_features().find("+avx2") != std::string::npos;
  for (const char *target : {"native", "x86-64-v3"}) {
    if (!avx2 && std::string(target) != "native") continue;
    auto opt = compile_at(text, 1, target)->run(inputs);
    ASSERT_EQ(ref.size(), opt.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      expect_close(ref[i], opt[i], rtol, atol, std::string(target) + ": output " + std::to_string(i));
    }
  }
}

// The op kinds of the graph -O1 compiles `text` to, in order.
inline std::vector<std::string> o1_ops(const std::string &text) {
  auto cm = compile_at(text, 1);
  std::vector<std::string> ops;
  for (auto &n : cm->graph().nodes) ops.push_back(op_name(n->kind));
  return ops;
}

}  // namespace kiln::test
