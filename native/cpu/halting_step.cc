// The fused halting step on the CPU: the loops around the shared per-position math of halting_step.h.
#include "cpu/halting_step.h"

#include <algorithm>
#include <type_traits>

#include "cpu/threads.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(PACT_HAVE_LIBMVEC)
#include <immintrin.h>
#define PACT_HALTING_VECTOR 1
// glibc's vector math library (libmvec): expf and logf on 8 lanes, AVX2 (the functions GCC calls for a vectorised
// expf under -ffast-math; accurate to a few ulps like the scalar ones).
extern "C" __m256 _ZGVdN8v_expf(__m256);
extern "C" __m256 _ZGVdN8v_logf(__m256);
#endif

namespace pact {

namespace {

// Positions a thread takes at least: a position costs tens of nanoseconds, so smaller chunks are not worth a fork.
constexpr size_t kGrain = 4096;

// Positions the vector loops take at a time (the scales of their accumulator rows stay on the stack).
[[maybe_unused]] constexpr size_t kChunk = 256;

// sum(a[0, n) * b[0, n)) in 8 partial sums, one per lane of a vector (a scalar running sum does not vectorise
// without reassociation; the gradient at 128x32x32x16 is 3-4% faster, same-process A/B).
inline float dot(const float* a, const float* b, size_t n) {
  constexpr size_t kLanes = 8;
  float lanes[kLanes] = {};
  size_t k = 0;
  for (; k + kLanes <= n; k += kLanes) {
    for (size_t j = 0; j < kLanes; ++j) lanes[j] += a[k + j] * b[k + j];
  }
  float sum = 0.0f;
  for (; k < n; ++k) sum += a[k] * b[k];
  for (size_t j = 0; j < kLanes; ++j) sum += lanes[j];
  return sum;
}

#if PACT_HALTING_VECTOR
// The per-position math of halting_step.h on 8 positions at once (the scalar loop spent 80% of the step in expf and
// logf one value at a time). Same formulas, same order of operations; only exp and log differ by their ulps.
namespace lanes {

using V = __m256;
inline V set(float v) { return _mm256_set1_ps(v); }
inline V select(V condition, V ifTrue, V ifFalse) { return _mm256_blendv_ps(ifFalse, ifTrue, condition); }

struct Pair {
  V value, complement;
};

// halting::sigmoidPair on 8 lanes.
inline Pair sigmoidPair(V v) {
  const V negAbs = _mm256_or_ps(v, set(-0.0f));  // -|v|
  const V e = _ZGVdN8v_expf(negAbs);
  const V r = _mm256_div_ps(set(1.0f), _mm256_add_ps(set(1.0f), e));
  const V er = _mm256_mul_ps(e, r);
  const V nonNegative = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GE_OQ);
  return {select(nonNegative, r, er), select(nonNegative, er, r)};
}

inline V logitOf(V eps) { return _ZGVdN8v_logf(_mm256_div_ps(eps, _mm256_sub_ps(set(1.0f), eps))); }

struct Draw {
  V xi, xiComplement, h, hComplement, dXiDx;
};

// halting::draw for an iteration before the last.
template <HaltingMode mode>
inline Draw draw(float temperature, V x, V eps) {
  const Pair h = sigmoidPair(x);
  if constexpr (mode == HaltingMode::kRelaxed) {
    const Pair xi = sigmoidPair(_mm256_div_ps(_mm256_add_ps(x, logitOf(eps)), set(temperature)));
    const V dXiDx = _mm256_div_ps(_mm256_mul_ps(xi.value, xi.complement), set(temperature));
    return {xi.value, xi.complement, h.value, h.complement, dXiDx};
  } else {
    const V argument = mode == HaltingMode::kDiscrete ? _mm256_add_ps(x, logitOf(eps)) : x;
    const V xi = _mm256_and_ps(_mm256_cmp_ps(argument, _mm256_setzero_ps(), _CMP_GT_OQ), set(1.0f));
    return {xi, _mm256_sub_ps(set(1.0f), xi), h.value, h.complement, _mm256_setzero_ps()};
  }
}

inline V load(const float* p) { return _mm256_loadu_ps(p); }
inline void store(float* p, V v) { _mm256_storeu_ps(p, v); }

// Positions [begin, end) of haltingStep, end - begin a multiple of 8, for an iteration before the last.
template <HaltingMode mode>
void forward(const float* sXi, const float* sH, const float* n, const float* haltLogits, const float* noise,
             size_t begin, size_t end, const HaltingStepConfig& cfg, float* sXiOut, float* sHOut, float* nOut,
             float* activeOut, float* z) {
  const V l = set(static_cast<float>(cfg.iteration)), delta = set(cfg.delta);
  for (size_t p = begin; p < end; p += 8) {
    const V s = load(sXi + p), sh = load(sH + p);
    const Draw d = draw<mode>(cfg.temperature, load(haltLogits + p),
                              mode == HaltingMode::kThresholded ? set(0.5f) : load(noise + p));
    const V rest = _mm256_mul_ps(s, d.xiComplement);
    store(z + (p - begin), _mm256_mul_ps(s, d.xi));
    store(sXiOut + p, rest);
    store(sHOut + p, _mm256_mul_ps(sh, d.hComplement));
    store(nOut + p, _mm256_add_ps(load(n + p), _mm256_mul_ps(_mm256_mul_ps(l, sh), d.h)));
    store(activeOut + p, _mm256_and_ps(_mm256_cmp_ps(rest, delta, _CMP_GT_OQ), rest));
  }
}

// Positions [begin, end) of haltingStepGrad, as forward; gz[p - begin] = Σ_c gOutput[p, c] u[p, c] (0 without u).
// Writes the scale of gU's rows into z.
template <HaltingMode mode>
void backward(const float* sXi, const float* sH, const float* haltLogits, const float* noise, const float* gSXi,
              const float* gSH, const float* gN, const float* gActive, const float* gz, size_t begin, size_t end,
              const HaltingStepConfig& cfg, float* gHaltLogits, float* gNoise, float* gSXiOut, float* gSHOut,
              float* z) {
  const V l = set(static_cast<float>(cfg.iteration)), delta = set(cfg.delta), zero = _mm256_setzero_ps();
  for (size_t p = begin; p < end; p += 8) {
    const V s = load(sXi + p), sh = load(sH + p), g = load(gz + (p - begin));
    const V eps = mode == HaltingMode::kThresholded ? set(0.5f) : load(noise + p);
    const Draw d = draw<mode>(cfg.temperature, load(haltLogits + p), eps);
    const V rest = _mm256_mul_ps(s, d.xiComplement);
    const V activeMask = _mm256_cmp_ps(rest, delta, _CMP_GT_OQ);
    const V gRest = _mm256_add_ps(load(gSXi + p), _mm256_and_ps(activeMask, load(gActive + p)));
    const V gSHp = load(gSH + p), gNp = load(gN + p);
    const V gXi = _mm256_mul_ps(s, _mm256_sub_ps(g, gRest));
    const V gH = _mm256_mul_ps(sh, _mm256_sub_ps(_mm256_mul_ps(l, gNp), gSHp));
    const V gXiDx = _mm256_mul_ps(gXi, d.dXiDx);
    store(gHaltLogits + p, _mm256_add_ps(gXiDx, _mm256_mul_ps(_mm256_mul_ps(gH, d.h), d.hComplement)));
    const V noiseGrad = _mm256_div_ps(gXiDx, _mm256_mul_ps(eps, _mm256_sub_ps(set(1.0f), eps)));
    store(gNoise + p, select(_mm256_cmp_ps(gXiDx, zero, _CMP_EQ_OQ), zero, noiseGrad));
    store(gSXiOut + p, _mm256_add_ps(_mm256_mul_ps(g, d.xi), _mm256_mul_ps(gRest, d.xiComplement)));
    store(gSHOut + p, _mm256_add_ps(_mm256_mul_ps(gSHp, d.hComplement), _mm256_mul_ps(_mm256_mul_ps(gNp, l), d.h)));
    store(z + (p - begin), _mm256_mul_ps(s, d.xi));
  }
}

}  // namespace lanes

// Calls f(std::integral_constant<HaltingMode, mode>{}) for cfg.mode.
template <typename F>
void withMode(HaltingMode mode, F&& f) {
  switch (mode) {
    case HaltingMode::kRelaxed: return f(std::integral_constant<HaltingMode, HaltingMode::kRelaxed>{});
    case HaltingMode::kDiscrete: return f(std::integral_constant<HaltingMode, HaltingMode::kDiscrete>{});
    default: return f(std::integral_constant<HaltingMode, HaltingMode::kThresholded>{});
  }
}
#endif

}  // namespace

void haltingStep(const float* sXi, const float* sH, const float* n, const float* haltLogits, const float* noise,
                 const float* output, const float* u, int64_t positions, int64_t channels, HaltingStepConfig cfg,
                 float* sXiOut, float* sHOut, float* nOut, float* activeOut, float* outputOut) {
  const auto c = static_cast<size_t>(channels);
  const size_t grain = std::max<size_t>(1, kGrain / std::max<size_t>(1, output != nullptr ? c : 1));
  parallelFor(static_cast<size_t>(positions), grain, [&](size_t begin, size_t end) {
    size_t p = begin;
#if PACT_HALTING_VECTOR
    if (!cfg.last) {
      float z[kChunk];
      withMode(cfg.mode, [&](auto mode) {
        while (end - p >= 8) {
          const size_t stop = p + std::min(kChunk, (end - p) / 8 * 8);
          lanes::forward<decltype(mode)::value>(sXi, sH, n, haltLogits, noise, p, stop, cfg, sXiOut, sHOut, nOut,
                                                activeOut, z);
          for (size_t q = p; output != nullptr && q < stop; ++q) {
            const float* in = output + q * c;
            const float* up = u + q * c;
            float* out = outputOut + q * c;
            for (size_t k = 0; k < c; ++k) out[k] = in[k] + z[q - p] * up[k];
          }
          p = stop;
        }
      });
    }
#endif
    for (; p < end; ++p) {
      const float x = cfg.last ? 0.0f : haltLogits[p];
      const float eps = cfg.last || cfg.mode == HaltingMode::kThresholded ? 0.5f : noise[p];
      const halting::StepOut o = halting::forward(cfg, sXi[p], sH[p], n[p], x, eps);
      if (output != nullptr) {
        const float* in = output + p * c;
        const float* up = u + p * c;
        float* out = outputOut + p * c;
        for (size_t k = 0; k < c; ++k) out[k] = in[k] + o.z * up[k];
      }
      sXiOut[p] = o.sXi;
      sHOut[p] = o.sH;
      nOut[p] = o.n;
      activeOut[p] = o.active;
    }
  });
}

void haltingStepGrad(const float* sXi, const float* sH, const float* haltLogits, const float* noise, const float* u,
                     const float* gSXi, const float* gSH, const float* gN, const float* gActive, const float* gOutput,
                     int64_t positions, int64_t channels, HaltingStepConfig cfg, float* gHaltLogits, float* gNoise,
                     float* gSXiOut, float* gSHOut, float* gU) {
  const auto c = static_cast<size_t>(channels);
  const size_t grain = std::max<size_t>(1, kGrain / std::max<size_t>(1, u != nullptr ? c : 1));
  parallelFor(static_cast<size_t>(positions), grain, [&](size_t begin, size_t end) {
    size_t p = begin;
#if PACT_HALTING_VECTOR
    if (!cfg.last) {
      float gz[kChunk], z[kChunk];
      withMode(cfg.mode, [&](auto mode) {
        while (end - p >= 8) {
          const size_t stop = p + std::min(kChunk, (end - p) / 8 * 8);
          for (size_t q = p; q < stop; ++q) gz[q - p] = u != nullptr ? dot(gOutput + q * c, u + q * c, c) : 0.0f;
          lanes::backward<decltype(mode)::value>(sXi, sH, haltLogits, noise, gSXi, gSH, gN, gActive, gz, p, stop,
                                                 cfg, gHaltLogits, gNoise, gSXiOut, gSHOut, z);
          for (size_t q = p; u != nullptr && q < stop; ++q) {
            const float* go = gOutput + q * c;
            float* gu = gU + q * c;
            for (size_t k = 0; k < c; ++k) gu[k] = go[k] * z[q - p];
          }
          p = stop;
        }
      });
    }
#endif
    for (; p < end; ++p) {
      const float gz = u != nullptr ? dot(gOutput + p * c, u + p * c, c) : 0.0f;
      const float x = cfg.last ? 0.0f : haltLogits[p];
      const float eps = cfg.last || cfg.mode == HaltingMode::kThresholded ? 0.5f : noise[p];
      const halting::StepGrad g = halting::backward(cfg, sXi[p], sH[p], x, eps, gSXi[p], gSH[p], gN[p], gActive[p], gz);
      if (u != nullptr) {
        const float* go = gOutput + p * c;
        float* gu = gU + p * c;
        for (size_t k = 0; k < c; ++k) gu[k] = go[k] * g.z;
      }
      gHaltLogits[p] = g.haltLogits;
      gNoise[p] = g.noise;
      gSXiOut[p] = g.sXi;
      gSHOut[p] = g.sH;
    }
  });
}

}  // namespace pact
