#include "cpu/isa.h"

#include <cstdlib>
#include <cstring>

namespace pact {

bool avx512Supported() {
#if defined(__GNUC__) && defined(__x86_64__)
  static const bool supported = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                                __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
  return supported;
#else
  return false;
#endif
}

bool useAvx512() {
  if (!avx512Supported()) return false;
  const char* isa = std::getenv("PACT_CPU_ISA");
  return isa == nullptr || std::strcmp(isa, "avx2") != 0;
}

bool amdMemoryTuning() {
  const char* setting = std::getenv("PACT_MEMORY_TUNING");
  return setting != nullptr && std::strcmp(setting, "amd") == 0;
}

}  // namespace pact
