// The fused PACT halting step (Algorithm 3, lines 7-15, with the active mask of eq. 27): one iteration l of an
// adaptive computation block for every position at once, in one pass.
//
// Per position p (h = σ(x), x = haltLogits[p], ε = noise[p], s = sXi[p] the ξ stick, sh = sH[p] the h stick):
//   relaxed      ξ = σ((x + logit ε) / λ)        (eq. 7 with logit(h) = x: no h is ever formed, nothing overflows)
//   discrete     ξ = [x + logit ε > 0]            (ξ ~ Bernoulli(h); the λ → 0 limit of relaxed on the same ε)
//   thresholded  ξ = [x > 0]                      (eq. 15: h > 0.5)
//   last (l = L) h = 1, ξ = 1; x and ε are not read
//   ẑ = s ξ,  s' = s (1 - ξ),  sh' = sh (1 - h),  N' = N + l sh h,  out'[p, c] = out[p, c] + ẑ u[p, c],
//   active[p] = s' [s' > δ]   (the mask â of the next iteration, eq. 27)
// 1 - ξ and 1 - h are computed as σ(-·), never by subtraction, so a stick keeps its relative precision.
// Cost: two exponentials and one log a position (relaxed), one exponential and one log (discrete).
//
// The per-position math below is `PACT_HD` (host and device) so the C++ kernel (halting_step.cc) and the CUDA
// kernel (cuda/halting_step.cu) share one copy of it.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define PACT_HD __host__ __device__
#else
#define PACT_HD
#endif

namespace pact {

enum class HaltingMode : int32_t { kRelaxed = 0, kDiscrete = 1, kThresholded = 2 };

// Scalar attributes of one step. `iteration` is l (1-based); `last` means l = L.
struct HaltingStepConfig {
  HaltingMode mode;
  int32_t iteration;
  bool last;
  float temperature;  // λ > 0, read in relaxed mode only
  float delta;        // δ >= 0, the clipping threshold of the active mask
};

namespace halting {

// σ(v) and σ(−v) = 1 − σ(v) from one exponential of −|v|, each to full relative precision (±∞ give 0 and 1).
struct SigmoidPair {
  float value, complement;
};

PACT_HD inline SigmoidPair sigmoidPair(float v) {
  const float e = expf(-fabsf(v));
  const float r = 1.0f / (1.0f + e);
  return v >= 0.0f ? SigmoidPair{r, e * r} : SigmoidPair{e * r, r};
}

// logit(ε) = log(ε / (1 − ε)): 1 − ε is exact for ε ≥ 1/2 and within an ulp below, so one log is accurate.
PACT_HD inline float logitOf(float eps) { return logf(eps / (1.0f - eps)); }

// ξ, 1 - ξ, h, 1 - h of one position, and dξ/dx (0 where ξ is a step function).
struct Draw {
  float xi, xiComplement, h, hComplement, dXiDx;
};

PACT_HD inline Draw draw(const HaltingStepConfig& cfg, float x, float eps) {
  if (cfg.last) return {1.0f, 0.0f, 1.0f, 0.0f, 0.0f};
  const SigmoidPair h = sigmoidPair(x);
  switch (cfg.mode) {
    case HaltingMode::kRelaxed: {
      const SigmoidPair xi = sigmoidPair((x + logitOf(eps)) / cfg.temperature);
      return {xi.value, xi.complement, h.value, h.complement, xi.value * xi.complement / cfg.temperature};
    }
    case HaltingMode::kDiscrete: {
      const float xi = x + logitOf(eps) > 0.0f ? 1.0f : 0.0f;
      return {xi, 1.0f - xi, h.value, h.complement, 0.0f};
    }
    default: {
      const float xi = x > 0.0f ? 1.0f : 0.0f;
      return {xi, 1.0f - xi, h.value, h.complement, 0.0f};
    }
  }
}

// The per-position outputs of the forward step; `z` (ẑ) scales u into the output accumulator.
struct StepOut {
  float z, sXi, sH, n, active;
};

PACT_HD inline StepOut forward(const HaltingStepConfig& cfg, float sXi, float sH, float n, float x, float eps) {
  const Draw d = draw(cfg, x, eps);
  const float rest = sXi * d.xiComplement;
  return {sXi * d.xi, rest, sH * d.hComplement, n + static_cast<float>(cfg.iteration) * sH * d.h,
          rest > cfg.delta ? rest : 0.0f};
}

// Gradients of one position given the upstream gradients gSXi, gSH, gN, gActive of the outputs s', sh', N',
// active and gz = Σ_c gOut[p, c] u[p, c]. The mask [s' > δ] is a constant of the backward pass.
struct StepGrad {
  float haltLogits, noise, sXi, sH, z;
};

PACT_HD inline StepGrad backward(const HaltingStepConfig& cfg, float sXi, float sH, float x, float eps, float gSXi,
                                 float gSH, float gN, float gActive, float gz) {
  const Draw d = draw(cfg, x, eps);
  const float rest = sXi * d.xiComplement;
  const float gRest = gSXi + (rest > cfg.delta ? gActive : 0.0f);
  const float l = static_cast<float>(cfg.iteration);
  const float gXi = sXi * (gz - gRest);  // dLoss/dξ
  const float gH = sH * (l * gN - gSH);   // dLoss/dh
  const float gXiDx = gXi * d.dXiDx;
  StepGrad g;
  g.haltLogits = gXiDx + gH * d.h * d.hComplement;
  // dξ/dε = dξ/dx · dlogit(ε)/dε; zero where ξ is a step (discrete, thresholded, last) or saturated.
  g.noise = gXiDx == 0.0f ? 0.0f : gXiDx / (eps * (1.0f - eps));
  g.sXi = gz * d.xi + gRest * d.xiComplement;
  g.sH = gSH * d.hComplement + gN * l * d.h;
  g.z = sXi * d.xi;
  return g;
}

}  // namespace halting

// Layout: sXi, sH, n, haltLogits, noise, active and the *Out arrays hold `positions` floats; output, u and
// outputOut hold `positions * channels` floats, position-major (channel fastest: NHWC with positions = N*H*W).
// `output`, `u` and `outputOut` are all null (no accumulator: discrete/thresholded blocks) or all non-null.
// haltLogits and noise are not read when cfg.last; noise is not read in thresholded mode.
// Threading: pact::parallelFor over positions. Cost: memory-bound, one read of each input and one write of each
// output (9 floats a position plus 3 floats a channel element) and up to 3 transcendentals a position.
// Outputs may alias their own input (s' over s, ...): every element is read before it is written.
void haltingStep(const float* sXi, const float* sH, const float* n, const float* haltLogits, const float* noise,
                 const float* output, const float* u, int64_t positions, int64_t channels, HaltingStepConfig cfg,
                 float* sXiOut, float* sHOut, float* nOut, float* activeOut, float* outputOut);

// Gradient of haltingStep. Inputs: the forward inputs sXi, sH, haltLogits, noise, u (u null without accumulator)
// and the upstream gradients of the outputs s', sh', N', active, out' (gOutput null without accumulator).
// Outputs: gradients of haltLogits, noise, sXi, sH (positions floats) and of u (positions * channels; null without
// accumulator). The gradients of n and output are the upstream gN and gOutput themselves (identity).
void haltingStepGrad(const float* sXi, const float* sH, const float* haltLogits, const float* noise, const float* u,
                     const float* gSXi, const float* gSH, const float* gN, const float* gActive, const float* gOutput,
                     int64_t positions, int64_t channels, HaltingStepConfig cfg, float* gHaltLogits, float* gNoise,
                     float* gSXiOut, float* gSHOut, float* gU);

}  // namespace pact
