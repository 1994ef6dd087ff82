// Compile-time check of cudnn_api.h against cuDNN's own header, built only where CMake finds cudnn.h
// (PACT_CUDNN_INCLUDE_DIR): every constant, the perf struct's layout, and each function's arity and parameter sizes.
// It defines nothing; a mismatch is a build error.
#include <cudnn.h>

#include <cstddef>
#include <tuple>

#include "cuda/cudnn_api.h"

namespace {

namespace api = pact::cudnn_api;

static_assert(CUDNN_MAJOR == 9, "cudnn_api.h declares cuDNN 9's API");
static_assert(CUDNN_STATUS_SUCCESS == api::kStatusSuccess);
static_assert(CUDNN_DATA_FLOAT == api::kDataFloat);
static_assert(CUDNN_TENSOR_NHWC == api::kTensorNhwc);
static_assert(CUDNN_CROSS_CORRELATION == api::kCrossCorrelation);
static_assert(CUDNN_FMA_MATH == api::kFmaMath);
static_assert(sizeof(cudnnStatus_t) == sizeof(api::Status) && sizeof(cudnnMathType_t) == sizeof(api::MathType));

template <typename Perf>
constexpr bool samePerfLayout() {
  return sizeof(Perf) == sizeof(api::AlgoPerf) && offsetof(Perf, algo) == offsetof(api::AlgoPerf, algo) &&
         offsetof(Perf, status) == offsetof(api::AlgoPerf, status) &&
         offsetof(Perf, time) == offsetof(api::AlgoPerf, time) &&
         offsetof(Perf, memory) == offsetof(api::AlgoPerf, memory) &&
         offsetof(Perf, determinism) == offsetof(api::AlgoPerf, determinism) &&
         offsetof(Perf, mathType) == offsetof(api::AlgoPerf, mathType);
}
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static_assert(samePerfLayout<cudnnConvolutionFwdAlgoPerf_t>());
static_assert(samePerfLayout<cudnnConvolutionBwdDataAlgoPerf_t>());
static_assert(samePerfLayout<cudnnConvolutionBwdFilterAlgoPerf_t>());

// A function type's return and parameter sizes, in order.
template <typename F>
struct Sizes;
template <typename R, typename... A>
struct Sizes<R (*)(A...)> {
  static constexpr auto value = std::make_tuple(sizeof(R), sizeof(A)...);
};
template <typename... A>
struct Sizes<void (*)(A...)> {
  static constexpr auto value = std::make_tuple(0, sizeof(A)...);
};

#define PACT_CUDNN_CHECK(name, symbol) \
  static_assert(Sizes<api::name##Fn>::value == Sizes<decltype(&::symbol)>::value, #symbol " differs from cudnn_api.h");
PACT_CUDNN_FUNCTIONS(PACT_CUDNN_CHECK)
#undef PACT_CUDNN_CHECK
#pragma GCC diagnostic pop

}  // namespace
