// What the CPU running kiln can execute. A model library records the instruction-set
// extensions its code uses (by these names); the runtime refuses one that needs what the
// host lacks instead of dying on an illegal instruction.
#pragma once
#include <string>
#include <vector>

namespace kiln {

// "x86_64" or "aarch64": the architecture this runtime was built for.
const char *host_arch();

// The extensions kiln's code generators use and records, e.g. "avx2", "fma", "avx512f",
// "avx512bw", "avx512vl", "avx512dq", "avx512vnni" (x86-64) or "neon" (aarch64).
const std::vector<std::string> &known_cpu_features();

// Whether the host has `feature` (one of known_cpu_features()). KILN_CPU_DISABLE, a comma-
// separated list, hides features from kiln (to check what a library needs, as oneDNN's
// ONEDNN_MAX_CPU_ISA does).
bool host_has_cpu_feature(const std::string &feature);

// The recorded features the host lacks; empty when the code can run here.
std::vector<std::string> missing_cpu_features(const std::vector<std::string> &needed);

}  // namespace kiln
