// The C++ flavour of examples/c/run_model.c, with the header-only wrapper kiln/runtime.hpp:
//
//   c++ -std=c++17 run_model.cpp -I include -L build -lkiln_runtime -o run_model_cpp
//   ./run_model_cpp model.so [input.raw [output.raw]]
//
// Runs a single-input f32 model; symbolic dims are taken as 1.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <vector>

#include "kiln/runtime.hpp"

int main(int argc, char **argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " MODEL.so [INPUT.raw [OUTPUT.raw]]\n";
    return 2;
  }
  try {
    kilnrt::Model model(argv[1]);
    auto ins = model.inputs();
    auto outs = model.outputs();
    if (ins.size() != 1 || ins[0].dtype != KILN_F32 || outs[0].dtype != KILN_F32) {
      std::cerr << "error: this example runs models with one f32 input and an f32 output\n";
      return 2;
    }
    std::vector<int64_t> shape = ins[0].shape;
    for (auto &d : shape) d = d < 0 ? 1 : d;
    size_t n = 1;
    for (auto d : shape) n *= static_cast<size_t>(d);
    std::vector<float> x(n);
    if (argc > 2) {
      std::ifstream f(argv[2], std::ios::binary);
      if (!f.read(reinterpret_cast<char *>(x.data()), static_cast<std::streamsize>(n * sizeof(float)))) {
        std::cerr << "error: cannot read " << n * sizeof(float) << " bytes from " << argv[2] << "\n";
        return 1;
      }
    } else {
      for (size_t k = 0; k < n; ++k) x[k] = static_cast<float>(k % 17) / 17.0f - 0.5f;
    }
    size_t m = 1;
    for (auto d : outs[0].shape) m *= static_cast<size_t>(d < 0 ? 1 : d);
    std::vector<float> y(m);
    std::vector<kilnrt::Tensor> results = {kilnrt::Tensor::buffer(y.data(), y.size())};
    // Models with more outputs get buffers for them too.
    std::vector<std::vector<unsigned char>> extra;
    for (size_t o = 1; o < outs.size(); ++o) {
      size_t bytes = kiln_dtype_size(outs[o].dtype);
      for (auto d : outs[o].shape) bytes *= static_cast<size_t>(d < 0 ? 1 : d);
      extra.emplace_back(bytes);
      results.push_back(kilnrt::Tensor::buffer(extra.back().data(), bytes));
    }
    model.run({kilnrt::Tensor::view(ins[0].name.c_str(), x.data(), shape)}, results);
    size_t best = static_cast<size_t>(std::max_element(y.begin(), y.end()) - y.begin());
    std::cout << results[0].name() << ": " << y.size() << " values, argmax " << best << " (" << y[best] << ")\n";
    if (argc > 3) {
      std::ofstream f(argv[3], std::ios::binary);
      f.write(reinterpret_cast<const char *>(y.data()), static_cast<std::streamsize>(y.size() * sizeof(float)));
      if (!f) {
        std::cerr << "error: cannot write " << argv[3] << "\n";
        return 1;
      }
    }
  } catch (const kilnrt::Error &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
