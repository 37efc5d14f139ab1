#include "model/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "brisk/error.h"

namespace brisk {

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  // Check the kind first: open() on a FIFO would block forever.
  struct stat pre{};
  if (::stat(path.c_str(), &pre) == 0 && !S_ISREG(pre.st_mode)) throw Error(path + ": not a regular file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st{};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = (size_t)st.st_size;
  if (f->size_ > 0) {
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw Error(path + ": mmap failed: " + std::strerror(errno));
    }
    f->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return f;
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

void ByteReader::seek(size_t pos) {
  if (pos > size_) fail("offset " + std::to_string(pos) + " is past the end of the file");
  pos_ = pos;
}

void ByteReader::need(size_t n, const std::string& what) const {
  if (n > size_ - pos_)
    fail("truncated: reading " + what + " needs " + std::to_string(n) + " bytes at offset " +
         std::to_string(pos_) + " but the file has " + std::to_string(size_) + " bytes");
}

std::string ByteReader::read_bytes(size_t n, const std::string& what) {
  need(n, what);
  std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
  pos_ += n;
  return s;
}

void ByteReader::fail(const std::string& msg) const { throw Error(path_ + ": " + msg); }

}  // namespace brisk
