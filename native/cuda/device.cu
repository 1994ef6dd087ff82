// Reports whether a CUDA device is usable. No driver or no GPU is an answer, never a crash.
#include <cuda_runtime.h>

#include "cuda/device.h"

namespace pact::cuda {

DeviceStatus deviceStatus() {
  DeviceStatus s{true, 0, "", ""};
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    s.reason = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorString(err);
    cudaGetLastError();
    return s;
  }
  if (count == 0) {
    s.reason = "no CUDA device found";
    return s;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) s.name = prop.name;
  s.deviceCount = count;
  return s;
}

}  // namespace pact::cuda
