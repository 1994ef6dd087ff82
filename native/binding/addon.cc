// Module entry: exports every function registered with PACT_EXPORT, plus build and runtime information.
#include <napi.h>

#include "binding/args.h"
#include "binding/build_info.h"
#include "binding/registry.h"
#include "cpu/threads.h"
#include "cuda/device.h"

#ifndef PACT_HAVE_CUDA
namespace pact::cuda {
DeviceStatus deviceStatus() { return {false, 0, "", "the addon was built without CUDA (nvcc not found)"}; }
}  // namespace pact::cuda
#endif

namespace {

Napi::Value buildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
#ifdef PACT_HAVE_DNNL
  out.Set("dnnl", true);
#else
  out.Set("dnnl", false);
#endif
  out.Set("threads", pact::numThreads());
  out.Set("cuda", pact::cudaStatusObject(env));
  out.Set("sanitizer", pact::sanitizerName());
  return out;
}

Napi::Value setNumThreads(const Napi::CallbackInfo& info) {
  pact::setNumThreads(static_cast<int>(pact::intArg(info, 0, "setNumThreads", "n", 1, 1024)));
  return info.Env().Undefined();
}

}  // namespace

PACT_EXPORT("buildInfo", buildInfo);
PACT_EXPORT("setNumThreads", setNumThreads);

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  for (const auto& [name, fn] : pact::exportRegistry()) {
    exports.Set(name, Napi::Function::New(env, fn, name));
  }
  return exports;
}

NODE_API_MODULE(pact, Init)
