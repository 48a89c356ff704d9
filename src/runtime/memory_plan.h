// Static memory planning: intermediate tensors share one arena. Each buffer lives from
// the step that produces it to the step that last reads it; buffers whose lifetimes
// overlap get disjoint byte ranges. Greedy by size (largest first), lowest fitting
// offset, 64-byte aligned.
#pragma once
#include <cstddef>
#include <vector>

namespace kiln {

struct BufferLife {
  size_t bytes = 0;
  int first = 0, last = 0;  // steps, inclusive
};

struct MemoryPlan {
  std::vector<size_t> offsets;  // per buffer, in input order
  size_t arena_bytes = 0;       // peak: the arena's size
  size_t total_bytes = 0;       // sum of all buffers (what allocating each would take)
};

MemoryPlan plan_memory(const std::vector<BufferLife> &buffers);

}  // namespace kiln
