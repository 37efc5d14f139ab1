// The device description and measurement of a build without nvcc: no
// device is ever listed, and the reason says why once.
#ifndef BRISK_HAVE_CUDA
#include "backend/cuda/cuda_measure.h"

namespace brisk::cuda {

namespace {
constexpr const char* kNoCuda = "built without CUDA (nvcc not found when Brisk was built)";
}

DeviceList describe_devices() {
  DeviceList l;
  l.reason = kNoCuda;
  return l;
}

DeviceMeasurement measure_device(int, bool) {
  DeviceMeasurement m;
  m.error = std::string("unavailable: ") + kNoCuda;
  return m;
}

}  // namespace brisk::cuda
#endif
