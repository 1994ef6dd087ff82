// Module entry: exports every function registered with PACT_EXPORT, plus build and runtime information.
#include <napi.h>

#include <cstdlib>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "binding/args.h"
#include "binding/build_info.h"
#include "binding/registry.h"
#include "cpu/isa.h"
#include "cpu/threads.h"
#include "cuda/device.h"

#ifndef PACT_HAVE_CUDA
namespace pact::cuda {
DeviceStatus deviceStatus() { return {false, 0, "", "the addon was built without CUDA (nvcc not found)"}; }
}  // namespace pact::cuda
#endif

namespace {

// glibc's allocator serves each fresh tfjs output array (calloc from V8) from new mmap'd pages by default, and
// their first-touch page faults cost more than the kernel writing them (8 MiB: ~3.4 ms of faults against ~0.7 ms
// for calloc's memset on recycled heap memory, measured here). So large blocks stay in the heap and freed memory
// is kept for reuse (as caching allocators do; the process keeps its peak heap). PACT_MALLOC_TUNING=0 leaves
// glibc's defaults.
bool tuneMalloc() {
#if defined(__GLIBC__)
  const char* env = std::getenv("PACT_MALLOC_TUNING");
  if (env != nullptr && std::strcmp(env, "0") == 0) return false;
  return mallopt(M_MMAP_THRESHOLD, 512 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 &&
         mallopt(M_TOP_PAD, 64 << 20) == 1;
#else
  return false;
#endif
}

const bool mallocTuned = tuneMalloc();

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
  out.Set("mallocTuning", mallocTuned);
  out.Set("avx512", pact::avx512Supported());
  out.Set("isa", pact::useAvx512() ? "avx512" : "avx2");
  out.Set("memoryTuning", pact::amdMemoryTuning() ? "amd" : "intel");
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
