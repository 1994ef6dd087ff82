#!/usr/bin/env bash
# `npm run test:native-variants`: the native kernels' tests against two other builds of the addon.
# 1. AddressSanitizer + UBSan (CPU kernels; no CUDA): test/backend and test/ops. A sanitizer report aborts the run.
# 2. Without oneDNN (as on a machine without libdnnl-dev): test/backend, where the dense ops fall back to tfjs' JS.
# The last line sums mocha's counts ("N passed, M failed").
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

if build_addon build-asan --CDPACT_SANITIZE=address --CDPACT_WITH_CUDA=OFF; then
  run_counted "native kernels under ASan+UBSan (build-asan)" \
    env PACT_ADDON="${PWD}/build-asan/Release/pact.node" LD_PRELOAD="$(g++ -print-file-name=libasan.so)" \
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    node node_modules/mocha/bin/mocha.js 'test/backend/*.test.ts' 'test/ops/*.test.ts'
fi
if build_addon build-nodnnl --CDPACT_WITH_DNNL=OFF --CDPACT_WITH_CUDA=OFF; then
  run_counted "backend without oneDNN (build-nodnnl)" \
    env PACT_ADDON="${PWD}/build-nodnnl/Release/pact.node" node node_modules/mocha/bin/mocha.js 'test/backend/*.test.ts'
fi
echo "${passed} passed, ${failed} failed"
exit "${status}"
