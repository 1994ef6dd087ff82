// The CPU simulation of the CUDA execution model (issue 9). The simulation build force-includes this header
// (g++ -include) into every .cu file, which it compiles as C++20; see README.md beside this file.
#pragma once
#include "cuda/sim/kernel.h"
#include "cuda/sim/runtime.h"
