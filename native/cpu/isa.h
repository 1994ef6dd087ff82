// Which vector width our own kernels use. The addon is compiled for x86-64-v3 (AVX2 + FMA), the portable baseline;
// kernels that also have AVX-512 versions (compiled for it inside `#pragma GCC target` regions) take them where the
// CPU has AVX-512, as oneDNN does for its primitives. PACT_CPU_ISA=avx2 keeps them on AVX2 (read at each call, so
// that tests and benchmarks run both paths in one process).
#pragma once

namespace pact {

// Whether this CPU runs the AVX-512 kernels (F, VL, DQ, BW; checked once).
bool avx512Supported();

// Whether the AVX-512 kernels run now: supported, and PACT_CPU_ISA is not "avx2".
bool useAvx512();

// Whether the masked convolution's AVX-512 kernels access memory as measured on an AMD EPYC with AVX-512 with random
// pixel masks rather than as on the Intel Xeon: which prefetches they issue and how the forward zeroes its output
// (native/cpu/masked_conv2d.cc, the notes above avx512ForwardPrefetches and zeroesFirst). Only where
// PACT_MEMORY_TUNING is `amd` (read at each call, so that benchmarks run both in one process), on any CPU: on that AMD
// machine it sped the masked forward up with random pixel masks (0.79-0.97x the time) but not a trained PSACT-32's
// training step (1.01-1.06x, bench/memory_tuning.ts), whose masks come from halting maps, not uniformly at random.
bool amdMemoryTuning();

}  // namespace pact
