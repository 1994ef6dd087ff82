// What the oneDNN-backed dense kernels (dense_conv.cc, dense_matmul.cc) share: one CPU engine and one stream for
// the process, the fused epilogue (bias + activation as oneDNN post-ops), and a small cache of primitives keyed by
// their full configuration. Creating a oneDNN primitive costs tens to hundreds of microseconds (JIT code
// generation); a cache hit costs a map lookup, so a layer called every training step pays that once.
//
// Threading: oneDNN runs each primitive on the OpenMP pool sized by PACT_NUM_THREADS (cpu/threads.h). The cache and
// the memory objects inside its entries are shared, so one mutex serialises lookups and execution: calls come from
// the JS thread, and a second caller (a worker thread) simply waits.
#pragma once
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "cpu/threads.h"

namespace pact {

// The activations tfjs fuses into FusedConv2D/_FusedMatMul that oneDNN computes as an eltwise post-op (prelu,
// which needs a tensor of slopes, is applied by the TS kernel after the native call).
enum class Activation : int { kLinear = 0, kRelu, kRelu6, kLeakyRelu, kElu, kSigmoid };

struct Epilogue {
  Activation activation = Activation::kLinear;
  float alpha = 0;  // leakyrelu's slope
};

inline std::optional<Activation> parseActivation(std::string_view name) {
  if (name == "linear") return Activation::kLinear;
  if (name == "relu") return Activation::kRelu;
  if (name == "relu6") return Activation::kRelu6;
  if (name == "leakyrelu") return Activation::kLeakyRelu;
  if (name == "elu") return Activation::kElu;
  if (name == "sigmoid") return Activation::kSigmoid;
  return std::nullopt;
}

}  // namespace pact

#ifdef PACT_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>

namespace pact::dnnl_ctx {

inline dnnl::engine& engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

inline dnnl::stream& stream() {
  static dnnl::stream s(engine());
  return s;
}

inline std::mutex& mutex() {
  static std::mutex m;
  return m;
}

// A user buffer in a fixed layout, bound to a new pointer each call (cheaper than building a memory object).
inline dnnl::memory unboundMemory(const dnnl::memory::desc& md) { return dnnl::memory(md, engine(), DNNL_MEMORY_NONE); }

inline void bind(const dnnl::memory& m, const float* data) { m.set_data_handle(const_cast<float*>(data)); }

// Key of a cached primitive: every integer that its construction depends on.
using Key = std::vector<int64_t>;

inline int64_t floatBits(float f) {
  int32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

inline dnnl::primitive_attr epilogueAttr(const Epilogue& e) {
  dnnl::post_ops ops;
  switch (e.activation) {
    case Activation::kLinear: break;
    case Activation::kRelu: ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f); break;
    case Activation::kRelu6: ops.append_eltwise(1.f, dnnl::algorithm::eltwise_clip, 0.f, 6.f); break;
    case Activation::kLeakyRelu: ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, e.alpha, 0.f); break;
    case Activation::kElu: ops.append_eltwise(1.f, dnnl::algorithm::eltwise_elu, 1.f, 0.f); break;
    case Activation::kSigmoid: ops.append_eltwise(1.f, dnnl::algorithm::eltwise_logistic, 0.f, 0.f); break;
  }
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  return attr;
}

inline void appendEpilogue(Key& key, const Epilogue& e) {
  key.push_back(static_cast<int64_t>(e.activation));
  key.push_back(floatBits(e.alpha));
}

// Entries live as long as the process (a network has a handful of distinct layer shapes); the cap only guards
// against a caller that sweeps shapes, by starting over. The key gets the thread count: a oneDNN primitive keeps
// the OpenMP thread count it was created with (one made before setNumThreads(2) ran on one thread ever after:
// 2x the time).
template <typename Entry>
class PrimitiveCache {
 public:
  template <typename Make>
  Entry& get(Key key, Make&& make) {
    key.push_back(numThreads());
    auto it = entries_.find(key);
    if (it != entries_.end()) return *it->second;
    if (entries_.size() >= kMaxEntries) entries_.clear();
    return *entries_.emplace(key, std::make_unique<Entry>(make())).first->second;
  }

 private:
  static constexpr size_t kMaxEntries = 256;
  std::map<Key, std::unique_ptr<Entry>> entries_;
};

}  // namespace pact::dnnl_ctx

#endif  // PACT_HAVE_DNNL
