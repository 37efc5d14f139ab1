#pragma once
#include <stdexcept>
#include <string>

namespace brisk {

// Every user-facing failure (bad file, bad field, bad config value) is a
// brisk::Error whose message names the file, field or value at fault.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace brisk
