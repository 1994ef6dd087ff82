// cuDNN's dense convolutions for pact-cuda, loaded at run time (cudnn_conv.h). The CUDA simulation never loads it:
// cuDNN would drive the real device, which the simulation stands in for.
#include "cuda/cudnn_conv.h"

#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "cuda/cudnn_api.h"
#include "cuda/device.h"
#include "cuda/layout.cuh"
#include "cuda/memory.cuh"

namespace pact::cuda {

namespace {

namespace api = cudnn_api;
using masked::ConvGeometry;

struct Loaded {
  CudnnStatus status;
  api::Api fn;
  api::Handle handle = nullptr;
};

Loaded load() {
  Loaded l;
#if defined(PACT_CUDA_SIM)
  l.status.reason = "the CUDA simulation has no cuDNN";
  return l;
#else
  const char* on = std::getenv("PACT_CUDNN");
  const std::string mode = on != nullptr ? on : "";
  if (mode != "1" && mode != "filter" && mode != "all") {
    l.status.reason = "off unless PACT_CUDNN=1 (or filter, all)";
    return l;
  }
  const char* path = std::getenv("PACT_CUDNN_LIBRARY");
  l.status.library = path != nullptr && *path != '\0' ? path : "libcudnn.so.9";
  if (deviceStatus().deviceCount == 0) {
    l.status.reason = "no CUDA device";
    return l;
  }
  // Kept loaded for the process's life: cuDNN's handle and plans outlive any caller.
  void* lib = dlopen(l.status.library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = dlerror();
    l.status.reason = std::string("cannot load ") + l.status.library + ": " + (why != nullptr ? why : "unknown");
    return l;
  }
#define PACT_CUDNN_RESOLVE(name, symbol)                                                     \
  l.fn.name = reinterpret_cast<api::name##Fn>(dlsym(lib, #symbol));                          \
  if (l.fn.name == nullptr) {                                                                \
    l.status.reason = l.status.library + " has no " #symbol;                                 \
    return l;                                                                                \
  }
  PACT_CUDNN_FUNCTIONS(PACT_CUDNN_RESOLVE)
#undef PACT_CUDNN_RESOLVE
  l.status.version = l.fn.GetVersion();
  if (l.status.version / 10000 != 9) {
    l.status.reason = "cuDNN " + std::to_string(l.status.version) + " found; cudnn_api.h declares cuDNN 9";
    return l;
  }
  cudaFree(nullptr);  // the runtime's primary context made current on this thread before cuDNN looks for one
  const api::Status created = l.fn.Create(&l.handle);
  if (created != api::kStatusSuccess) {
    l.status.reason = std::string("cudnnCreate: ") + l.fn.GetErrorString(created);
    return l;
  }
  const api::Status streamed = l.fn.SetStream(l.handle, nullptr);  // the null stream, as every kernel of ours
  if (streamed != api::kStatusSuccess) {
    l.status.reason = std::string("cudnnSetStream: ") + l.fn.GetErrorString(streamed);
    return l;
  }
  l.status.available = true;
  return l;
#endif
}

Loaded& loaded() {
  static Loaded l = load();
  return l;
}

// PACT_CUDNN_DEBUG=1: each plan's choice and cuDNN's Find results on stderr.
bool debug() {
  static const bool on = [] {
    const char* v = std::getenv("PACT_CUDNN_DEBUG");
    return v != nullptr && std::string(v) == "1";
  }();
  return on;
}

void check(api::Status status, const char* what) {
  if (status != api::kStatusSuccess) {
    throw std::runtime_error(std::string("cuDNN ") + what + ": " + loaded().fn.GetErrorString(status));
  }
}

// One shape's descriptors and algorithm, made on its first call and kept (a model has a handful of shapes).
class Plan {
 public:
  Plan(const ConvGeometry& g, int which) : which_(which) {
    try {
      init(g, which);
    } catch (...) {
      destroy();
      throw;
    }
  }
  ~Plan() { destroy(); }
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  bool usable() const { return usable_; }

  // which 0: out = y from (x, w); 1: out = dx from (w, dy); 2: out = dw from (x, dy).
  void run(const void* x, const void* w, const void* dy, void* out) const {
    const api::Api& f = loaded().fn;
    const api::Handle h = loaded().handle;
    const float one = 1.0f, zero = 0.0f;
    Scratch workspace(workspaceBytes_);
    void* ws = workspace.as<void>();
    if (which_ == 0) {
      check(f.Forward(h, &one, x_, x, w_, w, conv_, algo_, ws, workspaceBytes_, &zero, y_, out),
            "cudnnConvolutionForward");
    } else if (which_ == 1) {
      check(f.BackwardData(h, &one, w_, w, y_, dy, conv_, algo_, ws, workspaceBytes_, &zero, x_, out),
            "cudnnConvolutionBackwardData");
    } else {
      check(f.BackwardFilter(h, &one, x_, x, y_, dy, conv_, algo_, ws, workspaceBytes_, &zero, w_, out),
            "cudnnConvolutionBackwardFilter");
    }
  }

 private:
  // Descriptors, then cuDNN's Find.
  void init(const ConvGeometry& g, int which) {
    const api::Api& f = loaded().fn;
    check(f.CreateTensorDescriptor(&x_), "cudnnCreateTensorDescriptor");
    check(f.CreateTensorDescriptor(&y_), "cudnnCreateTensorDescriptor");
    check(f.CreateFilterDescriptor(&w_), "cudnnCreateFilterDescriptor");
    check(f.CreateConvolutionDescriptor(&conv_), "cudnnCreateConvolutionDescriptor");
    const auto i = [](int64_t v) { return static_cast<int>(v); };
    check(f.SetTensor4dDescriptor(x_, api::kTensorNhwc, api::kDataFloat, i(g.batch), i(g.inC), i(g.inH), i(g.inW)),
          "cudnnSetTensor4dDescriptor(x)");
    check(f.SetTensor4dDescriptor(y_, api::kTensorNhwc, api::kDataFloat, i(g.batch), i(g.outC), i(g.outH),
                                  i(g.outW)),
          "cudnnSetTensor4dDescriptor(y)");
    // KRSC: [outC, kH, kW, inC], the filter transposed from HWIO by the caller.
    check(f.SetFilter4dDescriptor(w_, api::kDataFloat, api::kTensorNhwc, i(g.outC), i(g.inC), i(g.kH), i(g.kW)),
          "cudnnSetFilter4dDescriptor");
    check(f.SetConvolution2dDescriptor(conv_, i(g.padTop), i(g.padLeft), i(g.strideH), i(g.strideW), 1, 1,
                                       api::kCrossCorrelation, api::kDataFloat),
          "cudnnSetConvolution2dDescriptor");
    check(f.SetConvolutionMathType(conv_, api::kFmaMath), "cudnnSetConvolutionMathType");
    std::array<api::AlgoPerf, 16> perf{};
    int returned = 0;
    const api::Handle h = loaded().handle;
    const int n = static_cast<int>(perf.size());
    if (which == 0) check(f.FindForward(h, x_, w_, conv_, y_, n, &returned, perf.data()), "Find (forward)");
    if (which == 1) check(f.FindBackwardData(h, w_, y_, conv_, x_, n, &returned, perf.data()), "Find (input grad)");
    if (which == 2) check(f.FindBackwardFilter(h, x_, y_, conv_, w_, n, &returned, perf.data()), "Find (filter grad)");
    // Fastest first; only FMA math (no tensor cores), as the descriptor asks.
    for (int k = 0; k < returned && k < n; ++k) {
      if (perf[k].status == api::kStatusSuccess && perf[k].mathType == api::kFmaMath) {
        algo_ = perf[k].algo;
        workspaceBytes_ = perf[k].memory;
        usable_ = true;
        break;
      }
    }
    if (debug()) {
      std::fprintf(stderr, "pact-cuda cuDNN plan: conv %d, x [%lld,%lld,%lld,%lld], filter [%lld,%lld,%lld,%lld], "
                           "stride %lld, pad %lld,%lld: %s algo %d, %zu workspace bytes; Find:", which,
                   static_cast<long long>(g.batch), static_cast<long long>(g.inH), static_cast<long long>(g.inW),
                   static_cast<long long>(g.inC), static_cast<long long>(g.kH), static_cast<long long>(g.kW),
                   static_cast<long long>(g.inC), static_cast<long long>(g.outC), static_cast<long long>(g.strideH),
                   static_cast<long long>(g.padTop), static_cast<long long>(g.padLeft), usable_ ? "runs" : "none",
                   algo_, workspaceBytes_);
      for (int k = 0; k < returned && k < n; ++k) {
        std::fprintf(stderr, " [algo %d status %d %.4f ms math %d]", perf[k].algo, perf[k].status, perf[k].time,
                     perf[k].mathType);
      }
      std::fprintf(stderr, "\n");
    }
  }

  void destroy() {
    const api::Api& f = loaded().fn;
    if (conv_ != nullptr) f.DestroyConvolutionDescriptor(conv_);
    if (w_ != nullptr) f.DestroyFilterDescriptor(w_);
    if (y_ != nullptr) f.DestroyTensorDescriptor(y_);
    if (x_ != nullptr) f.DestroyTensorDescriptor(x_);
  }

  int which_;
  api::TensorDescriptor x_ = nullptr, y_ = nullptr;
  api::FilterDescriptor w_ = nullptr;
  api::ConvolutionDescriptor conv_ = nullptr;
  api::Algo algo_ = 0;
  size_t workspaceBytes_ = 0;
  bool usable_ = false;
};

using PlanKey = std::array<int64_t, 16>;

const Plan& planFor(const ConvGeometry& g, int which) {
  static std::map<PlanKey, std::unique_ptr<Plan>> plans;
  const PlanKey key{g.batch, g.inH, g.inW, g.inC, g.kH, g.kW, g.outC, g.strideH, g.strideW, g.padTop, g.padBottom,
                    g.padLeft, g.padRight, g.outH, g.outW, which};
  auto it = plans.find(key);
  if (it == plans.end()) it = plans.emplace(key, std::make_unique<Plan>(g, which)).first;
  return *it->second;
}

// Copies a 4-D array of `dims` into the order `perm` (out dim d = in dim perm[d]), with the layout kernel.
void permute4(const float* in, const std::array<int64_t, 4>& dims, const std::array<int, 4>& perm, float* out) {
  std::array<int64_t, 4> inStrides{dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1};
  CopyShape s{};
  s.rank = 4;
  int64_t stride = 1;
  for (int d = 3; d >= 0; --d) {
    s.shape[d] = dims[perm[d]];
    s.srcStrides[d] = inStrides[perm[d]];
    s.dstStrides[d] = stride;
    stride *= s.shape[d];
  }
  stridedCopy(in, out, 4, s);
}

bool fitsInt(const ConvGeometry& g) {
  const int64_t big = std::max({g.batch * g.inH * g.inW * g.inC, g.batch * g.outH * g.outW * g.outC,
                                g.kH * g.kW * g.inC * g.outC});
  return big < INT_MAX;
}

}  // namespace

const CudnnStatus& cudnnStatus() { return loaded().status; }

bool cudnnConv2d(const ConvGeometry& g, int which, const float* a, const float* b, float* out) {
  if (!cudnnStatus().available || which < 0 || which > 2) return false;
  // cuDNN pads symmetrically; the output size must be its own.
  if (g.padTop != g.padBottom || g.padLeft != g.padRight || g.outH <= 0 || g.outW <= 0 || !fitsInt(g)) return false;
  const Plan& plan = planFor(g, which);
  if (!plan.usable()) return false;
  const std::array<int64_t, 4> hwio{g.kH, g.kW, g.inC, g.outC}, ohwi{g.outC, g.kH, g.kW, g.inC};
  Scratch filter(sizeof(float) * static_cast<size_t>(g.kH * g.kW * g.inC * g.outC));
  if (which == 2) {
    plan.run(a, nullptr, b, filter.as<float>());
    permute4(filter.as<float>(), ohwi, {1, 2, 3, 0}, out);  // OHWI -> HWIO
    return true;
  }
  permute4(b, hwio, {3, 0, 1, 2}, filter.as<float>());  // HWIO -> OHWI
  if (which == 0) plan.run(a, filter.as<float>(), nullptr, out);
  else plan.run(nullptr, filter.as<float>(), a, out);
  return true;
}

}  // namespace pact::cuda
