// Vector types for kernels written once over a vector of floats and compiled per instruction set (masked_direct.inc,
// masked_winograd.inc): Avx2Vec, 8 floats (__m256, the addon's x86-64-v3 baseline), and Avx512Vec, 16 floats
// (__m512), compiled inside a `#pragma GCC target("avx512...")` region; a kernel file includes its .inc once per
// type in a namespace of its own, the AVX-512 one inside the same pragma region (see pact::useAvx512). PortableVec
// (8 floats as an array) stands in where the compiler has no AVX2.
#pragma once
#include <cstring>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace pact::simd {

#if defined(__AVX2__) && defined(__FMA__)
struct Avx2Vec {
  using T = __m256;
  static constexpr int W = 8;
  static T zero() { return _mm256_setzero_ps(); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  // load(p) if `on`, else zeros (p is read either way), without a branch.
  static T loadIf(bool on, const float* p) {
    return _mm256_and_ps(_mm256_loadu_ps(p), _mm256_castsi256_ps(_mm256_set1_epi32(-static_cast<int>(on))));
  }
  // v if `on`, else zeros, without a branch.
  static T keepIf(bool on, T v) {
    return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(-static_cast<int>(on))));
  }
  // store(p, v) if `on`, else nothing, without a branch.
  static void storeIf(bool on, float* p, T v) { _mm256_maskstore_ps(p, _mm256_set1_epi32(-static_cast<int>(on)), v); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static T set1(float v) { return _mm256_set1_ps(v); }
  static T broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static T fmadd(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
};

#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw")
struct Avx512Vec {
  using T = __m512;
  static constexpr int W = 16;
  static T zero() { return _mm512_setzero_ps(); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static T loadIf(bool on, const float* p) {
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>(-static_cast<int>(on)), p);
  }
  static T keepIf(bool on, T v) { return _mm512_maskz_mov_ps(static_cast<__mmask16>(-static_cast<int>(on)), v); }
  static void storeIf(bool on, float* p, T v) {
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>(-static_cast<int>(on)), v);
  }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static T set1(float v) { return _mm512_set1_ps(v); }
  static T broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static T fmadd(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T sub(T a, T b) { return _mm512_sub_ps(a, b); }
};
#pragma GCC pop_options
#else
struct PortableVec {
  struct T {
    float v[8];
  };
  static constexpr int W = 8;
  template <typename F>
  static T lanes(F&& f) {
    T r;
    for (int i = 0; i < W; ++i) r.v[i] = f(i);
    return r;
  }
  static T zero() { return set1(0.0f); }
  static T load(const float* p) {
    T r;
    std::memcpy(r.v, p, sizeof(r.v));
    return r;
  }
  static T loadIf(bool on, const float* p) { return on ? load(p) : zero(); }
  static T keepIf(bool on, T v) { return on ? v : zero(); }
  static void storeIf(bool on, float* p, T v) {
    if (on) store(p, v);
  }
  static void store(float* p, T a) { std::memcpy(p, a.v, sizeof(a.v)); }
  static T set1(float v) { return lanes([&](int) { return v; }); }
  static T broadcast(const float* p) { return set1(*p); }
  static T fmadd(T a, T b, T c) { return lanes([&](int i) { return a.v[i] * b.v[i] + c.v[i]; }); }
  static T mul(T a, T b) { return lanes([&](int i) { return a.v[i] * b.v[i]; }); }
  static T add(T a, T b) { return lanes([&](int i) { return a.v[i] + b.v[i]; }); }
  static T sub(T a, T b) { return lanes([&](int i) { return a.v[i] - b.v[i]; }); }
};
#endif

}  // namespace pact::simd
