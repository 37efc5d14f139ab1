#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

namespace brisk {

// A read-only memory map of a whole file. Weights that need no conversion
// are used in place, straight from the page cache.
class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::string& path);  // throws brisk::Error
  ~MappedFile();
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Bounds-checked little-endian reader over a byte range; every failure names
// the file and what was being read.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size, std::string path)
      : data_(data), size_(size), path_(std::move(path)) {}
  size_t offset() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  void seek(size_t pos);
  void need(size_t n, const std::string& what) const;
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_bytes(size_t n, const std::string& what);
  [[noreturn]] void fail(const std::string& msg) const;
  const std::string& path() const { return path_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string path_;
};

}  // namespace brisk
