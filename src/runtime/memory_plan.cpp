#include "runtime/memory_plan.h"

#include <algorithm>
#include <numeric>

namespace kiln {

namespace {
size_t align64(size_t n) { return (n + 63) / 64 * 64; }
}  // namespace

MemoryPlan plan_memory(const std::vector<BufferLife> &buffers) {
  MemoryPlan plan;
  plan.offsets.assign(buffers.size(), 0);
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return buffers[a].bytes > buffers[b].bytes; });
  std::vector<size_t> placed;
  for (size_t i : order) {
    const BufferLife &b = buffers[i];
    size_t need = align64(b.bytes);
    plan.total_bytes += need;
    // Byte ranges taken by placed buffers alive at the same time, by offset.
    std::vector<std::pair<size_t, size_t>> busy;
    for (size_t j : placed) {
      const BufferLife &o = buffers[j];
      if (o.first <= b.last && b.first <= o.last) busy.emplace_back(plan.offsets[j], plan.offsets[j] + align64(o.bytes));
    }
    std::sort(busy.begin(), busy.end());
    size_t at = 0;
    for (auto [lo, hi] : busy) {
      if (lo >= at + need) break;  // the gap before this range fits
      at = std::max(at, hi);
    }
    plan.offsets[i] = at;
    plan.arena_bytes = std::max(plan.arena_bytes, at + need);
    placed.push_back(i);
  }
  return plan;
}

}  // namespace kiln
