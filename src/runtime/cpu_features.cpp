#include "runtime/cpu_features.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

namespace kiln {

const char *host_arch() {
#if defined(__x86_64__)
  return "x86_64";
#elif defined(__aarch64__)
  return "aarch64";
#else
  return "unknown";
#endif
}

const std::vector<std::string> &known_cpu_features() {
  static const std::vector<std::string> names = {"sse4.2",   "avx",      "avx2",     "fma",        "f16c",
                                                 "avx512f",  "avx512bw", "avx512vl", "avx512dq",   "avx512cd",
                                                 "avx512vnni", "neon"};
  return names;
}

namespace {

bool cpu_has(const std::string &f) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (f == "sse4.2") return __builtin_cpu_supports("sse4.2");
  if (f == "avx") return __builtin_cpu_supports("avx");
  if (f == "avx2") return __builtin_cpu_supports("avx2");
  if (f == "fma") return __builtin_cpu_supports("fma");
  if (f == "f16c") return __builtin_cpu_supports("f16c");
  if (f == "avx512f") return __builtin_cpu_supports("avx512f");
  if (f == "avx512bw") return __builtin_cpu_supports("avx512bw");
  if (f == "avx512vl") return __builtin_cpu_supports("avx512vl");
  if (f == "avx512dq") return __builtin_cpu_supports("avx512dq");
  if (f == "avx512cd") return __builtin_cpu_supports("avx512cd");
  if (f == "avx512vnni") return __builtin_cpu_supports("avx512vnni");
  return false;
#elif defined(__aarch64__)
  return f == "neon";  // Advanced SIMD is mandatory in AArch64
#else
  return false;
#endif
}

bool disabled(const std::string &f) {
  const char *env = std::getenv("KILN_CPU_DISABLE");
  if (!env) return false;
  std::stringstream ss(env);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item == f) return true;
  }
  return false;
}

}  // namespace

bool host_has_cpu_feature(const std::string &feature) { return cpu_has(feature) && !disabled(feature); }

std::vector<std::string> missing_cpu_features(const std::vector<std::string> &needed) {
  std::vector<std::string> out;
  for (auto &f : needed) {
    if (!host_has_cpu_feature(f)) out.push_back(f);
  }
  return out;
}

}  // namespace kiln
