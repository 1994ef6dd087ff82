#!/usr/bin/env bash
# `npm run test:cuda-sim`: every CUDA kernel of the project on the CPU simulation of the device (native/cuda/sim),
# twice: built with AddressSanitizer+UBSan into build-sim-asan (every test), then with ThreadSanitizer into
# build-sim-tsan (every test but the whole-model training steps, below).
# Each run prints mocha's counts; the last line sums them ("N passed, M failed"). A sanitizer report in the test
# process aborts it (the fixtures' planted bugs run in child processes, whose reports the tests expect).
# V8's background job threads synchronise in uninstrumented code, which ThreadSanitizer reports as races inside
# node (and then may crash): node runs with --single-threaded (fewer such jobs) and test/cuda_sim/tsan.supp
# suppresses the rest; neither touches the simulator's own threads.
set -uo pipefail
cd "$(dirname "$0")/.."

source scripts/lib.sh

# sim_suite <sanitizer> <build dir> <runtime library to preload> <sanitizer options variable=value> <test files...>
sim_suite() {
  local sanitizer=$1 dir=$2 runtime=$3 options=$4
  shift 4
  build_addon "${dir}" --CDPACT_CUDA_SIM=ON --CDPACT_SANITIZE="${sanitizer}" --CDPACT_WITH_CUDA=OFF \
    --CDPACT_WITH_DNNL=OFF || return
  run_counted "CUDA simulation, ${sanitizer} sanitizer (${dir})" \
    env PACT_REQUIRE_SIM=1 PACT_SIM_BUILD="${PWD}/${dir}" PACT_SIM_ADDON="${PWD}/${dir}/Release/pact_sim.node" \
    LD_PRELOAD="$(g++ -print-file-name="${runtime}")" "${options}" \
    node --single-threaded node_modules/mocha/bin/mocha.js "$@"
}

start=$(date +%s)
sim_suite address build-sim-asan libasan.so "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1" 'test/cuda_sim/**/*.test.ts'
# ThreadSanitizer looks for races between a block's simulated threads (a missing __syncthreads): the kernel and
# backend tests run every kernel; the whole-model training steps (pact_cuda_training, about 5 of its minutes) run the
# same kernels again and stay with AddressSanitizer above.
sim_suite thread build-sim-tsan libtsan.so \
  "TSAN_OPTIONS=halt_on_error=1:abort_on_error=1:suppressions=${PWD}/test/cuda_sim/tsan.supp" \
  $(ls test/cuda_sim/*.test.ts | grep -v pact_cuda_training)
echo "CUDA simulation suite: $(($(date +%s) - start)) s"
echo "${passed} passed, ${failed} failed"
exit "${status}"
