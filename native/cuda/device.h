// CUDA availability, callable from C++ whether or not the addon was built with CUDA.
#pragma once
#include <string>

namespace pact::cuda {

struct DeviceStatus {
  bool compiled;      // the addon contains CUDA code
  int deviceCount;    // 0 when unavailable
  std::string name;   // device 0's name, when available
  std::string reason; // why CUDA is unavailable, when it is
};

DeviceStatus deviceStatus();

}  // namespace pact::cuda
