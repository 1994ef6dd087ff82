#!/usr/bin/env bash
# A GPU session (../shared/gpu/README.md) in two steps.
#
#   bash scripts/gpu_session.sh pack   here: builds pact.node with CUDA for sm_90 (no oneDNN: that machine lacks
#                                      it, and the GPU suite needs none), and packs into .device/ (git-excluded)
#                                      this machine's node, the node_modules the suite and benchmarks need
#                                      (production ones plus mocha and tsx) and the addon.
#   bash scripts/gpu_session.sh run    there (the device tool, carrying .device): the GPU test suite (pact-cuda's
#                                      and the CUDA kernels' tests on the real device, host fallbacks as errors),
#                                      PyTorch/cuDNN's reference figures, our CUDA benchmarks, then
#                                      compute-sanitizer memcheck and racecheck over the kernel tests (memcheck also
#                                      over the cuDNN convolutions' test). Dense convolutions run on cuDNN, which
#                                      that machine's Python venv holds (nvidia-cudnn-cu13): the script finds it with
#                                      python3 and the tests require it (PACT_CUDNN_REQUIRED=1). Each phase has
#                                      its own time limit (seconds: PHASE_LIMITS="tests torch bench resnet psact
#                                      memcheck racecheck"); one log, $OUT/run.log, and the benchmarks' JSON/markdown
#                                      in $OUT. The psact phase (bench/psact_throughput.bench.ts on pact-cuda) needs
#                                      the runs PSACT_RUN and DENSE_RUN (default runs/psact32-300, runs/resnet32-300,
#                                      trained on the procedural dataset) carried too; it is skipped without them.
set -uo pipefail
cd "$(dirname "$0")/.."

pack() {
  source scripts/lib.sh
  build_addon build-gpu --CDPACT_WITH_DNNL=OFF --CDCMAKE_CUDA_ARCHITECTURES=90 || exit 1
  grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >>.git/info/exclude
  mkdir -p .device
  strip -o .device/pact.node build-gpu/Release/pact.node
  git rev-parse --short HEAD >.device/commit
  [ -s .device/node.xz ] || xz -T2 -6 -c "$(readlink -f "$(command -v node)")" >.device/node.xz
  # What the run needs of node_modules (dependencies, installed optional ones and peers, from the packages the
  # suite and benchmarks import), without source maps, browser bundles and typings: about 9 MB packed.
  local mods
  mods=$(node -e "$(
    cat <<'JS'
const fs = require('fs'), path = require('path');
const seen = new Set();
function dirOf(name, from) {
  for (let d = from; ; d = path.dirname(d)) {
    const dir = path.join(d, 'node_modules', name);
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (d === path.dirname(d)) return null;
  }
}
function visit(name, from) {
  const dir = dirOf(name, from);
  if (dir === null || seen.has(dir)) return;
  seen.add(dir);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  for (const deps of [pkg.dependencies, pkg.optionalDependencies, pkg.peerDependencies]) {
    for (const dep of Object.keys(deps ?? {})) visit(dep, dir);
  }
}
for (const name of process.argv.slice(1)) visit(name, process.cwd());
console.log([...seen].map((d) => path.relative(process.cwd(), d)).join('\n'));
JS
  )" @tensorflow/tfjs @tensorflow/tfjs-backend-cpu cli-progress commander pngjs mocha tsx)
  # shellcheck disable=SC2086
  tar --exclude='*.map' --exclude='node_modules/@tensorflow/*.min.js' --exclude='*.html' --exclude='*es2017*' --exclude='*fesm*' \
    --exclude='*.d.ts' --exclude='*.tsbuildinfo' --exclude=miniprogram -cJf .device/node_modules.txz $mods
  du -sh .device/* | sed 's#^#packed: #'
}

phase() {
  local name=$1 limit=$2 start rc
  shift 2
  echo "== ${name} (limit ${limit} s): $*"
  start=$(date +%s)
  timeout "${limit}" "$@" 2>&1
  rc=$?
  echo "== ${name}: exit ${rc} in $(($(date +%s) - start)) s"
}

run() {
  : "${OUT:?run it on the device machine, where OUT is set}"
  xz -dc .device/node.xz >/tmp/node && chmod +x /tmp/node && export PATH=/tmp:$PATH
  tar -xJf .device/node_modules.txz
  export PACT_ADDON=${PWD}/.device/pact.node
  # cuDNN from the PyTorch venv's nvidia-cudnn wheel (libcudnn.so.9 finds its sub-libraries and cuBLAS itself).
  local cudnn_lib
  cudnn_lib=$(python3 -c 'import nvidia.cudnn as c, os; print(os.path.join(list(c.__path__)[0], "lib"))' 2>/dev/null)
  if [ -n "${cudnn_lib}" ] && [ -f "${cudnn_lib}/libcudnn.so.9" ]; then
    export PACT_CUDNN_LIBRARY=${cudnn_lib}/libcudnn.so.9
    export LD_LIBRARY_PATH=${cudnn_lib}${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}
    export PACT_CUDNN=1 PACT_CUDNN_REQUIRED=1
  fi
  local commit limits mocha tsx kernel_tests
  commit=$(cat .device/commit)
  read -r -a limits <<<"${PHASE_LIMITS:-100 40 70 60 90 90 40}"
  local psact_run=${PSACT_RUN:-runs/psact32-300} dense_run=${DENSE_RUN:-runs/resnet32-300}
  mocha=(node node_modules/mocha/bin/mocha.js)
  tsx=(node node_modules/tsx/dist/cli.mjs)
  kernel_tests=(test/cuda_sim/masked_conv2d.test.ts test/cuda_sim/halting_step.test.ts
    test/cuda_sim/pact_cuda_kernels.test.ts)
  {
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    uname -r
    node --version
    echo "commit ${commit}"
    echo "cuDNN: ${PACT_CUDNN_LIBRARY:-not found in the nvidia.cudnn package of python3}"
    phase tests "${limits[0]}" env PACT_CUDA_TESTS=gpu "${mocha[@]}" 'test/cuda_sim/pact_cuda_*.test.ts' \
      test/cuda_sim/masked_conv2d.test.ts test/cuda_sim/halting_step.test.ts
    phase torch "${limits[1]}" python3 bench/pytorch_cuda.py --out "${OUT}/pytorch_cuda.json"
    phase bench "${limits[2]}" "${tsx[@]}" bench/cuda_masked_conv2d.bench.ts --torch "${OUT}/pytorch_cuda.json" \
      --out "${OUT}" --commit "${commit}"
    phase resnet "${limits[3]}" "${tsx[@]}" bench/cuda_resnet_step.bench.ts --steps 20 --torch "${OUT}/pytorch_cuda.json" \
      --profile --out "${OUT}" --commit "${commit}"
    if [ -f "${psact_run}/checkpoint.bin" ] && [ -f "${dense_run}/checkpoint.bin" ]; then
      phase psact "${limits[4]}" "${tsx[@]}" bench/psact_throughput.bench.ts --backend pact-cuda --psact "${psact_run}" \
        --dense "${dense_run}" --out "${OUT}/psact_throughput" --commit "${commit}"
    else
      echo "== psact: skipped (${psact_run} or ${dense_run} not carried)"
    fi
    phase memcheck "${limits[5]}" env PACT_CUDA_TESTS=gpu compute-sanitizer --tool memcheck --error-exitcode 9 \
      --print-limit 20 "${mocha[@]}" "${kernel_tests[@]}" test/cuda_sim/pact_cuda_cudnn.test.ts
    phase racecheck "${limits[6]}" env PACT_CUDA_TESTS=gpu compute-sanitizer --tool racecheck --error-exitcode 9 \
      --print-limit 20 "${mocha[@]}" "${kernel_tests[@]}"
  } 2>&1 | tee "${OUT}/run.log"
}

case "${1:-}" in
  pack) pack ;;
  run) run ;;
  *)
    echo "usage: $0 pack|run" >&2
    exit 2
    ;;
esac
