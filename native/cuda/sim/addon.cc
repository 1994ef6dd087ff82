// Module entry of pact_sim.node, the addon whose CUDA kernels run on the CPU simulation of the device: it exports
// the functions that the CUDA bindings (native/binding/cuda_*.cc) registered with PACT_EXPORT, and `buildInfo`.
// It holds no OpenMP code (libgomp is not instrumented, so ThreadSanitizer would report its internals).
#include <napi.h>

#include "binding/build_info.h"
#include "binding/registry.h"
#include "cuda/device.h"

namespace {

Napi::Value buildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
  out.Set("simulated", true);
  out.Set("cuda", pact::cudaStatusObject(env));
  out.Set("sanitizer", pact::sanitizerName());
  return out;
}

}  // namespace

PACT_EXPORT("buildInfo", buildInfo);

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  for (const auto& [name, fn] : pact::exportRegistry()) {
    exports.Set(name, Napi::Function::New(env, fn, name));
  }
  return exports;
}

NODE_API_MODULE(pact_sim, Init)
