// What sysinfo knows about the CUDA devices: a description (cheap: device
// properties) and two measured ceilings per device (a second or two of GPU
// time): device memory bandwidth, which bounds decode, and matrix
// throughput, which bounds prefill. Plain C++: the definitions live in
// cuda_measure.cu where nvcc was found, and in cuda_measure_stub.cpp
// (every call says "unavailable") where it was not. Only sysinfo calls these.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace brisk::cuda {

struct DeviceDescription {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int sm_count = 0;
  uint64_t total_bytes = 0, free_bytes = 0;
  int memory_bus_bits = 0;
  std::string driver_version;   // the driver's CUDA API version, e.g. "12.4"
  std::string runtime_version;  // the CUDA runtime Brisk was linked with, e.g. "13.0"
  std::string pci_bus_id;       // e.g. "0000:17:00.0"
};

struct DeviceList {
  bool available = false;
  std::string reason;  // why not, when unavailable (no driver, no device, built without CUDA)
  std::vector<DeviceDescription> devices;
};

// Never throws: every failure is a reason.
DeviceList describe_devices();

struct DeviceMeasurement {
  bool ok = false;
  std::string error;  // what failed, when !ok
  // A device-to-device copy of a large buffer, counting bytes read plus
  // bytes written, median of several copies timed with events.
  double bandwidth_bytes_per_s = 0;
  uint64_t bandwidth_buffer_bytes = 0;
  std::string bandwidth_method;
  // cuBLAS F16 x F16 GEMM with FP32 accumulation (what the backend's F16
  // weights run), 2*M*N*K FLOP per GEMM, median of several.
  double f16_flops = 0;
  std::string f16_method;
  // cuBLASLt FP8 E4M3 x E4M3 GEMM with FP32 accumulation, sm_89 and newer;
  // 0 with fp8_method saying why where the device has no FP8 tensor cores.
  double fp8_flops = 0;
  std::string fp8_method;
};

// Measures device `index` (quick: a smaller buffer and GEMM and fewer
// repeats, for tests). Never throws.
DeviceMeasurement measure_device(int index, bool quick);

}  // namespace brisk::cuda
