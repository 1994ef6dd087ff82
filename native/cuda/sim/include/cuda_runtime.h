// In the simulation build this directory comes first on the include path, so `#include <cuda_runtime.h>` in a
// launcher or a binding gets the simulated runtime instead of the toolkit's.
#pragma once
#include "cuda/sim/sim.h"
