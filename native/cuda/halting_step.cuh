// CUDA launchers of the fused halting step. Same signatures as the C++ kernels of cpu/halting_step.h (whose
// header states the math, the layout and which pointers may be null), on device pointers. They launch through
// PACT_LAUNCH on the default stream and return without synchronising (read the outputs after a synchronising
// copy); they throw std::runtime_error when the launch fails. Plain CUDA: no shared memory, no barriers, no warp
// intrinsics, no tensor cores or cp.async, so the CPU simulation runs them as they are.
// Status: compiled for sm_80/sm_90 in every CUDA build; its tests pass on an H100 (2026-11-26, compute-sanitizer
// memcheck and racecheck clean).
#pragma once
#include <cstdint>

#include "cpu/halting_step.h"

namespace pact::cuda {

// Thread mapping: one thread per element of the [positions, channels] output accumulator (per position when
// `output` is null), grid-stride over 64-bit indices; every thread recomputes its position's draw (a few
// transcendentals, cheaper than a second pass or shared memory) and the thread of channel 0 writes the
// per-position outputs. Accesses are coalesced for the accumulator and the per-position arrays alike.
// Assumes: positions * channels < 2^62; no alignment beyond float's.
void haltingStep(const float* sXi, const float* sH, const float* n, const float* haltLogits, const float* noise,
                 const float* output, const float* u, int64_t positions, int64_t channels, HaltingStepConfig cfg,
                 float* sXiOut, float* sHOut, float* nOut, float* activeOut, float* outputOut);

// Thread mapping: one thread per position, grid-stride; the thread reduces gOutput·u over its channels, then
// writes gU for them (channel loads are strided by `channels` across a warp: fine for PSACT's 16-64 channels,
// where a warp's reads still fill whole cache lines over the loop).
void haltingStepGrad(const float* sXi, const float* sH, const float* haltLogits, const float* noise, const float* u,
                     const float* gSXi, const float* gSH, const float* gN, const float* gActive, const float* gOutput,
                     int64_t positions, int64_t channels, HaltingStepConfig cfg, float* gHaltLogits, float* gNoise,
                     float* gSXiOut, float* gSHOut, float* gU);

}  // namespace pact::cuda
