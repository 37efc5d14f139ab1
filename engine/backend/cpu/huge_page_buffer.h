// Anonymous memory in 2 MiB-aligned ranges advised for transparent huge
// pages (MADV_HUGEPAGE). The CPU backend copies its large weights into such
// buffers: decode streams every weight once per token, and from a file
// mapping in 4 KiB pages the page walks cost a single-sequence F16 decode
// about a tenth of its speed (docs/BENCHMARKS.md, "Weights in huge pages").
#pragma once
#include <cstddef>
#include <cstdint>

namespace brisk {

class HugePageBuffer {
 public:
  // Throws brisk::Error naming the size when the memory cannot be mapped.
  explicit HugePageBuffer(size_t bytes);
  ~HugePageBuffer();
  HugePageBuffer(HugePageBuffer&& o) noexcept;
  HugePageBuffer& operator=(HugePageBuffer&& o) noexcept;
  HugePageBuffer(const HugePageBuffer&) = delete;
  HugePageBuffer& operator=(const HugePageBuffer&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }

  static constexpr size_t kHugePage = size_t(2) << 20;
  // Whether the kernel grants huge pages on request (transparent_hugepage
  // "always" or "madvise"); without them a copy would only cost memory.
  static bool available();
  // MemAvailable of /proc/meminfo in bytes, 0 when unknown.
  static int64_t memory_available();

 private:
  void release();
  void* map_ = nullptr;  // the mapping (aligned inside)
  size_t map_bytes_ = 0;
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace brisk
