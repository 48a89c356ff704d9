// The model part of a kiln model library: the optimized graph (with its pre-packed
// weights), the entry point of every compiled node, and what the code needs from the CPU.
// `kiln compile` writes it as a constant blob into the library next to the generated
// kernels; the runtime reads it back without copying the weights.
//
// Layout: "KILNLIB\0", u32 format version, u64 length of the header section, the header
// section (metadata, graph, kernel table; little-endian, length-prefixed), then, from the
// next 64-byte boundary, the weights section (each tensor 64-byte aligned).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "runtime/executor.h"

namespace kiln {

// Bumped whenever the layout or the runtime ABI the kernels call changes (2: kernel
// scratch through kiln_runtime_scratch_alloc / _free); a runtime reads only its own version.
constexpr uint32_t kModelFormatVersion = 2;

struct ModelLibraryInfo {
  uint32_t format_version = kModelFormatVersion;
  std::string kiln_version;  // of the compiler that wrote it
  std::string target;        // as given to `kiln compile --target`
  std::string arch;          // "x86_64" or "aarch64"
  // Instruction-set extensions the code uses (runtime/cpu_features.h names).
  std::vector<std::string> cpu_features;
  int opt_level = 0;
  std::string source;  // the model it was compiled from (for messages)
};

struct ModelPayload {
  ModelLibraryInfo info;
  Model model;
  KernelTable kernels;  // keyed by nodes of model.graph
};

// Serializes the graph, the kernel table and the info. Constant tensors' data are written
// to the weights section.
std::string serialize_model(const ModelLibraryInfo &info, const Model &m, const KernelTable &kernels);

// Reads a blob written by serialize_model. Constants borrow their data from `data`, which
// must stay alive (and 64-byte aligned) as long as the model. Throws user_error naming the
// problem for a blob that is truncated, foreign or of another format version.
ModelPayload deserialize_model(const uint8_t *data, size_t size);

// Only the info (cheap: stops before the graph).
ModelLibraryInfo read_model_info(const uint8_t *data, size_t size);

}  // namespace kiln
