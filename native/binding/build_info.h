// Build facts shared by both addons' buildInfo(): the CUDA device status and the sanitizer compiled in.
#pragma once
#include <napi.h>

#include "cuda/device.h"

namespace pact {

inline Napi::Object cudaStatusObject(Napi::Env env) {
  const auto cuda = cuda::deviceStatus();
  auto c = Napi::Object::New(env);
  c.Set("compiled", cuda.compiled);
  c.Set("available", cuda.deviceCount > 0);
  c.Set("deviceCount", cuda.deviceCount);
  c.Set("device", cuda.name);
  c.Set("reason", cuda.reason);
  return c;
}

inline const char* sanitizerName() {
#if defined(__SANITIZE_ADDRESS__)
  return "address";
#elif defined(__SANITIZE_THREAD__)
  return "thread";
#else
  return "";
#endif
}

}  // namespace pact
