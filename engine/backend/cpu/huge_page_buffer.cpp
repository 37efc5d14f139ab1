#include "backend/cpu/huge_page_buffer.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>

#include "brisk/error.h"

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace brisk {

HugePageBuffer::HugePageBuffer(size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  const size_t rounded = (bytes + kHugePage - 1) & ~(kHugePage - 1);
#ifdef __linux__
  // One huge page more than needed, so an aligned range of `rounded` bytes fits.
  map_bytes_ = rounded + kHugePage;
  map_ = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw Error("cannot map " + std::to_string(bytes) + " bytes for weights in huge pages: " +
                std::strerror(errno));
  }
  const uintptr_t a = ((uintptr_t)map_ + kHugePage - 1) & ~(uintptr_t)(kHugePage - 1);
  data_ = reinterpret_cast<void*>(a);
  // Advice before the first touch, so the pages are huge from the start; a
  // kernel that declines leaves ordinary pages, which still work.
  madvise(data_, rounded, MADV_HUGEPAGE);
#else
  map_bytes_ = rounded + kHugePage;
  map_ = ::operator new(map_bytes_);
  data_ = reinterpret_cast<void*>(((uintptr_t)map_ + kHugePage - 1) & ~(uintptr_t)(kHugePage - 1));
#endif
}

void HugePageBuffer::release() {
  if (!map_) return;
#ifdef __linux__
  munmap(map_, map_bytes_);
#else
  ::operator delete(map_);
#endif
  map_ = data_ = nullptr;
  map_bytes_ = size_ = 0;
}

HugePageBuffer::~HugePageBuffer() { release(); }

HugePageBuffer::HugePageBuffer(HugePageBuffer&& o) noexcept
    : map_(std::exchange(o.map_, nullptr)),
      map_bytes_(std::exchange(o.map_bytes_, 0)),
      data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)) {}

HugePageBuffer& HugePageBuffer::operator=(HugePageBuffer&& o) noexcept {
  if (this != &o) {
    release();
    map_ = std::exchange(o.map_, nullptr);
    map_bytes_ = std::exchange(o.map_bytes_, 0);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

bool HugePageBuffer::available() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!in || !std::getline(in, line)) return false;
  return line.find("[always]") != std::string::npos || line.find("[madvise]") != std::string::npos;
}

int64_t HugePageBuffer::memory_available() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}

}  // namespace brisk
