// The device side of the CUDA simulation: CUDA's keywords, built-in variables, barriers, warp operations,
// atomics and device math for g++, and `pact::sim::launch`, which PACT_LAUNCH calls in place of <<<>>>.
//
// Model (README.md beside this file has the whole story): blocks run one at a time in grid order; the threads of
// a block are OS threads that run concurrently; `__shared__` variables are function statics (one copy, which is
// exactly one per block when blocks run one at a time), refilled with 0xFF bytes (NaN as float) before every
// block so a read before any write shows; warps are the block's threads in linear order, 32 at a time.
#pragma once
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>

#include "cuda/sim/runtime.h"

#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// The section lets the simulator find every static shared variable to poison it before each block.
#define __shared__ static __attribute__((section("pact_sim_shared")))

inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim{1, 1, 1};
inline thread_local dim3 gridDim{1, 1, 1};
constexpr int warpSize = 32;

namespace pact::sim {

enum class BarrierOp { kSync, kCount, kAnd, kOr };

// Waits for every thread of the block that has not exited; returns the number of them with a non-zero predicate
// (kCount), whether all (kAnd) or any (kOr) had one, or 0 (kSync).
int syncThreads(BarrierOp op, int predicate, const char* file, int line);

// The values that the participating lanes of a warp operation brought, by lane; `present` has their bits.
struct WarpValues {
  uint64_t value[32];
  unsigned present;
  unsigned lane;
};
WarpValues warpExchange(unsigned mask, uint64_t mine, const char* op);
unsigned activeMask();
[[noreturn]] void trap(const char* what);

// Start of the launch's dynamic shared memory (`extern __shared__`), 16-byte aligned, exactly the launch's size.
void* dynamicSharedMemory();

// `extern __shared__ T name[];` is rewritten at build time (sim_source.cmake) to bind a reference to this.
struct DynamicShared {
  template <typename T>
  using ArrayRef = T (&)[];
  template <typename T>
  operator ArrayRef<T>() const {
    return *static_cast<T(*)[]>(dynamicSharedMemory());
  }
};

template <typename T>
uint64_t bitsOf(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "warp shuffles move at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  return bits;
}

// A lane that did not take part (outside the mask, exited, or past the block's end) gives an undefined value on
// the device; the simulation gives all-ones bytes (NaN as float, -1 as int) so that a use of it shows.
template <typename T>
T laneValue(const WarpValues& w, int src, T self) {
  if (src < 0) return self;
  uint64_t bits = (w.present >> src) & 1u ? w.value[src] : ~uint64_t{0};
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

cudaError_t validateLaunch(const void* kernel, dim3 grid, dim3 block, size_t sharedBytes);
void setLastError(cudaError_t error);
void runGrid(dim3 grid, dim3 block, size_t sharedBytes, const std::function<void()>& thread);

// What `kernel<<<grid, block, sharedBytes, stream>>>(args...)` does: refuse a launch the device would refuse,
// with its error, else convert the arguments to the kernel's parameter types once and run every thread of the
// grid; returns when the kernel has finished (streams are synchronous).
template <typename... P, typename... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t sharedBytes, cudaStream_t, A&&... args) {
  const cudaError_t error = validateLaunch(reinterpret_cast<const void*>(kernel), grid, block, sharedBytes);
  if (error != cudaSuccess) {
    setLastError(error);
    return;
  }
  const std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
  runGrid(grid, block, sharedBytes, [&] { std::apply(kernel, params); });
}

}  // namespace pact::sim

// Barriers. The source line is recorded so that threads meeting at different __syncthreads (a divergent barrier,
// undefined on the device) are reported.
#define __syncthreads() ::pact::sim::syncThreads(::pact::sim::BarrierOp::kSync, 0, __FILE__, __LINE__)
#define __syncthreads_count(p) ::pact::sim::syncThreads(::pact::sim::BarrierOp::kCount, (p) != 0, __FILE__, __LINE__)
#define __syncthreads_and(p) ::pact::sim::syncThreads(::pact::sim::BarrierOp::kAnd, (p) != 0, __FILE__, __LINE__)
#define __syncthreads_or(p) ::pact::sim::syncThreads(::pact::sim::BarrierOp::kOr, (p) != 0, __FILE__, __LINE__)

// Warp operations: every lane named in `mask` that has not exited meets the others, as on sm_70 and newer.
inline void __syncwarp(unsigned mask = 0xffffffffu) { pact::sim::warpExchange(mask, 0, "__syncwarp"); }
inline unsigned __activemask() { return pact::sim::activeMask(); }

inline unsigned __ballot_sync(unsigned mask, int predicate) {
  const pact::sim::WarpValues w = pact::sim::warpExchange(mask, predicate != 0, "__ballot_sync");
  unsigned bits = 0;
  for (int l = 0; l < 32; ++l) bits |= ((w.present >> l) & 1u) && w.value[l] ? 1u << l : 0u;
  return bits;
}
inline int __all_sync(unsigned mask, int predicate) {
  const pact::sim::WarpValues w = pact::sim::warpExchange(mask, predicate != 0, "__all_sync");
  for (int l = 0; l < 32; ++l) {
    if (((w.present >> l) & 1u) && !w.value[l]) return 0;
  }
  return 1;
}
inline int __any_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) != 0; }

template <typename T>
T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize) {
  const pact::sim::WarpValues w = pact::sim::warpExchange(mask, pact::sim::bitsOf(var), "__shfl_sync");
  const int base = static_cast<int>(w.lane) / width * width;
  return pact::sim::laneValue(w, base + ((srcLane % width) + width) % width, var);
}
template <typename T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  const pact::sim::WarpValues w = pact::sim::warpExchange(mask, pact::sim::bitsOf(var), "__shfl_up_sync");
  const int lane = static_cast<int>(w.lane);
  return pact::sim::laneValue(w, lane % width >= static_cast<int>(delta) ? lane - static_cast<int>(delta) : -1, var);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  const pact::sim::WarpValues w = pact::sim::warpExchange(mask, pact::sim::bitsOf(var), "__shfl_down_sync");
  const int lane = static_cast<int>(w.lane);
  return pact::sim::laneValue(w, lane % width + static_cast<int>(delta) < width ? lane + static_cast<int>(delta) : -1,
                              var);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize) {
  const pact::sim::WarpValues w = pact::sim::warpExchange(mask, pact::sim::bitsOf(var), "__shfl_xor_sync");
  const int lane = static_cast<int>(w.lane);
  const int src = lane ^ laneMask;
  return pact::sim::laneValue(w, src < (lane / width + 1) * width ? src : -1, var);
}

// Atomics: relaxed, as on the device; std::atomic_ref makes them atomic for the host threads and for TSan. The value
// converts to the pointee's type, as CUDA's overloads do.
template <typename T>
T atomicAdd(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).fetch_add(value, std::memory_order_relaxed);
}
template <typename T>
T atomicSub(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).fetch_sub(value, std::memory_order_relaxed);
}
template <typename T>
T atomicExch(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).exchange(value, std::memory_order_relaxed);
}
template <typename T>
T atomicCAS(T* address, std::type_identity_t<T> compare, std::type_identity_t<T> value) {
  std::atomic_ref<T>(*address).compare_exchange_strong(compare, value, std::memory_order_relaxed);
  return compare;
}
template <typename T, typename F>
T atomicUpdate(T* address, F next) {
  std::atomic_ref<T> ref(*address);
  T old = ref.load(std::memory_order_relaxed);
  while (!ref.compare_exchange_weak(old, next(old), std::memory_order_relaxed)) {
  }
  return old;
}
template <typename T>
T atomicMax(T* address, std::type_identity_t<T> value) {
  return atomicUpdate(address, [value](T old) { return old < value ? value : old; });
}
template <typename T>
T atomicMin(T* address, std::type_identity_t<T> value) {
  return atomicUpdate(address, [value](T old) { return value < old ? value : old; });
}
template <typename T>
T atomicAnd(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).fetch_and(value, std::memory_order_relaxed);
}
template <typename T>
T atomicOr(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).fetch_or(value, std::memory_order_relaxed);
}
template <typename T>
T atomicXor(T* address, std::type_identity_t<T> value) {
  return std::atomic_ref<T>(*address).fetch_xor(value, std::memory_order_relaxed);
}
inline unsigned atomicInc(unsigned* address, unsigned limit) {
  return atomicUpdate(address, [limit](unsigned old) { return old >= limit ? 0u : old + 1; });
}
inline unsigned atomicDec(unsigned* address, unsigned limit) {
  return atomicUpdate(address, [limit](unsigned old) { return old == 0 || old > limit ? limit : old - 1; });
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }
[[noreturn]] inline void __trap() { pact::sim::trap("__trap() called"); }

// Device math that has no host twin of the same name (expf, logf, log1pf, fmaxf, ... come from <cmath>).
inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline float __expf(float x) { return expf(x); }
// Round-to-nearest float operations that the device never contracts into a fused multiply-add. The simulation is
// compiled for baseline x86-64, which has no FMA instruction: plain operators round the same.
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __logf(float x) { return logf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline int __float2int_rn(float x) { return static_cast<int>(nearbyintf(x)); }
inline int __float2int_rz(float x) { return static_cast<int>(x); }
inline int __float_as_int(float x) { return __builtin_bit_cast(int, x); }
inline unsigned __float_as_uint(float x) { return __builtin_bit_cast(unsigned, x); }
inline float __int_as_float(int x) { return __builtin_bit_cast(float, x); }
inline float __uint_as_float(unsigned x) { return __builtin_bit_cast(float, x); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
template <typename T>
T __ldg(const T* p) {
  return *p;
}
