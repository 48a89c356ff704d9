// The disk cache of compiled kernels (DESIGN.md: "Compiled kernels are cached on disk keyed
// by a hash of (loop IR, target, LLVM version)"). Jit::compile keys each object group by
// its kernels and the target, loads a hit instead of running LLVM, and stores a miss.
//
// Layout: ${KILN_CACHE:-$HOME/.cache/kiln}/kernels/<key>.o, each file the object followed
// by the SHA-256 of the object, so a damaged file (truncated, overwritten, half-written
// before a power cut) reads as a miss instead of linking bad code. Files are written to a
// temporary name and renamed, so concurrent processes never see partial files. Every
// operation is best effort: an unreadable or unwritable cache only costs compile time.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loop/kernel.h"

namespace llvm {
class MemoryBuffer;
class StringRef;
}  // namespace llvm

namespace kiln {

// The cache directory, or "" when the cache is off (KILN_KERNEL_CACHE=0) or neither
// KILN_CACHE nor HOME is set. Read from the environment on every call.
std::string kernel_cache_dir();

// Hex SHA-256 of `salt` (target, LLVM version, codegen version, opt level) and the exact
// Loop IR of `kernels` in order: the printed text plus what the printer leaves out (every
// expression's type, the bits of float constants).
std::string kernel_cache_key(const std::vector<Kernel> &kernels, const std::string &salt);

// The object stored under `key`; null when there is none or it is damaged (checksum
// mismatch, not an object file). A hit refreshes the file's mtime (eviction is LRU).
std::unique_ptr<llvm::MemoryBuffer> load_cached_object(const std::string &dir, const std::string &key);

// Stores `object` under `key`, replacing any file there. False when it could not be written.
bool store_cached_object(const std::string &dir, const std::string &key, llvm::StringRef object);

constexpr uint64_t kKernelCacheMaxBytes = uint64_t{512} << 20;
constexpr uint64_t kKernelCacheTrimmedBytes = uint64_t{384} << 20;

// When the files in `dir` exceed `max_bytes`, deletes the least recently used (oldest
// mtime) until at most `trimmed_bytes` remain.
void trim_kernel_cache(const std::string &dir, uint64_t max_bytes = kKernelCacheMaxBytes,
                       uint64_t trimmed_bytes = kKernelCacheTrimmedBytes);

}  // namespace kiln
