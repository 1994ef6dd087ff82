// CUDA kernels of the fused halting step (see halting_step.cuh for the thread mapping and cpu/halting_step.h for
// the math, which both kernels share with the C++ one).
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "cuda/halting_step.cuh"
#include "cuda/launch.h"

namespace pact::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;

int blocksFor(int64_t items) { return gridStrideBlocks(items, kThreads, kMaxBlocks); }

__device__ inline float inputOrHalf(const float* values, int64_t p, bool read) { return read ? values[p] : 0.5f; }

__global__ void haltingStepKernel(const float* sXi, const float* sH, const float* n, const float* haltLogits,
                                  const float* noise, const float* output, const float* u, int64_t positions,
                                  int64_t channels, HaltingStepConfig cfg, float* sXiOut, float* sHOut, float* nOut,
                                  float* activeOut, float* outputOut) {
  const int64_t c = output != nullptr ? channels : 1;
  const int64_t total = positions * c;
  const bool readNoise = !cfg.last && cfg.mode != HaltingMode::kThresholded;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = i / c;
    const float x = cfg.last ? 0.0f : haltLogits[p];
    const halting::StepOut o = halting::forward(cfg, sXi[p], sH[p], n[p], x, inputOrHalf(noise, p, readNoise));
    if (output != nullptr) outputOut[i] = output[i] + o.z * u[i];
    if (i - p * c == 0) {
      sXiOut[p] = o.sXi;
      sHOut[p] = o.sH;
      nOut[p] = o.n;
      activeOut[p] = o.active;
    }
  }
}

__global__ void haltingStepGradKernel(const float* sXi, const float* sH, const float* haltLogits, const float* noise,
                                      const float* u, const float* gSXi, const float* gSH, const float* gN,
                                      const float* gActive, const float* gOutput, int64_t positions, int64_t channels,
                                      HaltingStepConfig cfg, float* gHaltLogits, float* gNoise, float* gSXiOut,
                                      float* gSHOut, float* gU) {
  const bool readNoise = !cfg.last && cfg.mode != HaltingMode::kThresholded;
  for (int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; p < positions;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float gz = 0.0f;
    if (u != nullptr) {
      for (int64_t k = 0; k < channels; ++k) gz += gOutput[p * channels + k] * u[p * channels + k];
    }
    const float x = cfg.last ? 0.0f : haltLogits[p];
    const halting::StepGrad g = halting::backward(cfg, sXi[p], sH[p], x, inputOrHalf(noise, p, readNoise), gSXi[p],
                                                  gSH[p], gN[p], gActive[p], gz);
    if (u != nullptr) {
      for (int64_t k = 0; k < channels; ++k) gU[p * channels + k] = gOutput[p * channels + k] * g.z;
    }
    gHaltLogits[p] = g.haltLogits;
    gNoise[p] = g.noise;
    gSXiOut[p] = g.sXi;
    gSHOut[p] = g.sH;
  }
}

}  // namespace

void haltingStep(const float* sXi, const float* sH, const float* n, const float* haltLogits, const float* noise,
                 const float* output, const float* u, int64_t positions, int64_t channels, HaltingStepConfig cfg,
                 float* sXiOut, float* sHOut, float* nOut, float* activeOut, float* outputOut) {
  if (positions == 0) return;
  const int64_t total = positions * (output != nullptr ? channels : 1);
  PACT_LAUNCH(haltingStepKernel, blocksFor(total), kThreads, 0, nullptr, sXi, sH, n, haltLogits, noise, output, u,
              positions, channels, cfg, sXiOut, sHOut, nOut, activeOut, outputOut);
  checkLaunch("pact::cuda::haltingStep");
}

void haltingStepGrad(const float* sXi, const float* sH, const float* haltLogits, const float* noise, const float* u,
                     const float* gSXi, const float* gSH, const float* gN, const float* gActive, const float* gOutput,
                     int64_t positions, int64_t channels, HaltingStepConfig cfg, float* gHaltLogits, float* gNoise,
                     float* gSXiOut, float* gSHOut, float* gU) {
  if (positions == 0) return;
  PACT_LAUNCH(haltingStepGradKernel, blocksFor(positions), kThreads, 0, nullptr, sXi, sH, haltLogits, noise, u, gSXi,
              gSH, gN, gActive, gOutput, positions, channels, cfg, gHaltLogits, gNoise, gSXiOut, gSHOut, gU);
  checkLaunch("pact::cuda::haltingStepGrad");
}

}  // namespace pact::cuda
