// U(0, 1) noise for the halting units' draws (relaxed and discrete halting, RelaxedBernoulli), counter-based and
// 32-bit: draw i of a 64-bit seed is mix(mix(i + a) ^ b), with mix Wellons' lowbias32 integer hash (two
// xorshift-multiply rounds; "Prospecting for hash functions", 2018) and the keys a, b mixed from the seed's halves,
// its top 23 bits k as (k + 1/2) / 2^23: every draw lies strictly inside (0, 1) and is exactly a float, so logit(ε)
// is finite. A draw depends only on the seed and its index: any split over threads gives the same numbers, and
// src/ops/halting_util.ts computes the same ones in JavaScript on backends without this kernel (Math.imul and
// unsigned shifts), so a seed gives the same noise on every backend. At most 2^32 draws a call. tfjs' own
// randomUniform, a JavaScript loop, took 1.4 ms for 128 x 32 x 32 draws here, a halting step's.
#pragma once
#include <cstdint>

namespace pact {

// out[0, n) <- draws 0 .. n-1 of the seed high * 2^32 + low; n <= 2^32.
void uniformNoise(uint32_t high, uint32_t low, int64_t n, float* out);

}  // namespace pact
