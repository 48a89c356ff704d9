// One compiled model, several input shapes: compiles MODEL once with its symbolic dims
// left symbolic, then runs every reference case given and compares each output with the
// ONNX Runtime reference (relative L2 <= 1e-4).
//
//   kiln_dynamic_shapes MODEL.onnx CASE_DIR [CASE_DIR...]
// CASE_DIR holds manifest.json (scripts/make_model_refs.py), inputs/ and outputs/.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>

#include "compiler/compiler.h"
#include "onnx/importer.h"
#include "support/error.h"
#include "support/npy.h"

using namespace kiln;

int main(int argc, char **argv) {
  if (argc < 3) {
    std::cerr << "usage: kiln_dynamic_shapes MODEL.onnx CASE_DIR [CASE_DIR...]\n";
    return 2;
  }
  try {
    auto t0 = std::chrono::steady_clock::now();
    CompileOptions opts;
    opts.opt_level = 3;
    auto cm = CompiledModel::compile(load_onnx(argv[1]), opts);
    double compile_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "compiled " << argv[1] << " once in " << compile_s << " s; inputs:";
    for (const Value *v : cm->graph().inputs) std::cout << " " << v->name << shape_str(v->shape);
    std::cout << "\n";
    int failed = 0;
    for (int i = 2; i < argc; ++i) {
      std::string dir = argv[i];
      std::ifstream f(dir + "/manifest.json");
      user_assert(f.good()) << "no manifest.json in " << dir << " (run scripts/make_model_refs.sh)";
      nlohmann::json m = nlohmann::json::parse(f);
      std::map<std::string, Tensor> inputs;
      for (auto &in : m["inputs"]) inputs[in["name"]] = read_npy(dir + "/" + in["file"].get<std::string>());
      // The first run of a shape plans its memory; the second runs in the planned arena.
      cm->run(inputs);
      auto r0 = std::chrono::steady_clock::now();
      std::vector<Tensor> outs = cm->run(inputs);
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - r0).count();
      size_t k = 0;
      for (auto &out : m["outputs"]) {
        Tensor want = read_npy(dir + "/" + out["file"].get<std::string>());
        const Tensor &got = outs.at(k++);
        double num = 0, den = 0;
        bool same_shape = got.shape() == want.shape();
        for (int64_t e = 0; same_shape && e < want.numel(); ++e) {
          double d = got.get_f64(e) - want.get_f64(e);
          num += d * d;
          den += want.get_f64(e) * want.get_f64(e);
        }
        double rel = same_shape ? std::sqrt(num / std::max(den, 1e-30)) : INFINITY;
        bool ok = rel <= 1e-4;
        failed += !ok;
        std::cout << (ok ? "PASS " : "FAIL ") << m["model"].get<std::string>() << "/" << m["shape_tag"].get<std::string>()
                  << " output " << out["name"].get<std::string>() << " " << shape_str(got.shape()) << " rel-L2 " << rel
                  << " (" << ms << " ms)\n";
      }
    }
    std::cout << (argc - 2 - 0) << " cases run on one compiled model, " << failed << " failed outputs\n";
    return failed ? 1 : 0;
  } catch (const Error &e) {
    std::cerr << "kiln_dynamic_shapes: " << e.what() << "\n";
    return 2;
  }
}
