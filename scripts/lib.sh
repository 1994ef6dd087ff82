# Shared by .ci/run and the scripts/*_test.sh suites: run mocha (or any suite printing mocha's counts), add its
# counts to the totals. A suite that exits non-zero with no failing test counted (a build error, a sanitizer abort)
# counts as one failure.
passed=${passed:-0}
failed=${failed:-0}
status=${status:-0}
# What failed (mocha's failure reports, or a crashed suite's last lines), kept by run_counted so that .ci/run can
# print it again at its end, where a log cut to its tail still shows it. Shared with the nested suites.
if [ -z "${PACT_FAILURES_FILE:-}" ]; then
  PACT_FAILURES_FILE=$(mktemp)
  export PACT_FAILURES_FILE
fi

# run_counted <label> <command...>: runs the command, tees its output, adds its counts.
run_counted() {
  local label=$1 log rc p f
  shift
  echo "== ${label}"
  log=$(mktemp)
  "$@" 2>&1 | tee "${log}"
  rc=${PIPESTATUS[0]}
  if grep -Eq '^[0-9]+ passed, [0-9]+ failed$' "${log}"; then
    p=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "${log}" | tail -n 1 | awk '{print $1}')
    f=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "${log}" | tail -n 1 | awk '{print $3}')
  else
    p=$(grep -Eo '^ +[0-9]+ passing' "${log}" | awk '{s+=$1} END {print s+0}')
    f=$(grep -Eo '^ +[0-9]+ failing' "${log}" | awk '{s+=$1} END {print s+0}')
  fi
  if [ "${rc}" -ne 0 ] && [ "${f}" -eq 0 ]; then f=1; fi
  if [ "${f}" -gt 0 ]; then
    {
      echo "== ${label}: ${f} failed (exit ${rc})"
      # A nested suite (its own "N passed, M failed" line) has recorded its failures itself.
      if ! grep -Eq '^[0-9]+ passed, [0-9]+ failed$' "${log}"; then
        if grep -Eq '^ +[0-9]+ failing' "${log}"; then
          sed -n '/^ \+[0-9]\+ failing/,$p' "${log}" | head -n 150
        else
          tail -n 40 "${log}"
        fi
      fi
    } >>"${PACT_FAILURES_FILE}"
  fi
  [ "${rc}" -ne 0 ] && status=1
  passed=$((passed + p))
  failed=$((failed + f))
  echo "== ${label}: ${p} passed, ${f} failed (exit ${rc})"
  rm -f "${log}"
}

# build_addon <dir> <cmake-js flags...>: builds an addon variant; a failure counts as one failed test.
build_addon() {
  local dir=$1
  shift
  mkdir -p "${dir}"
  if ! npx cmake-js compile --out "${dir}" "$@" >"${dir}/build.log" 2>&1; then
    tail -n 50 "${dir}/build.log"
    echo "build of ${dir} failed"
    failed=$((failed + 1))
    status=1
    return 1
  fi
}

# print_failures: what run_counted recorded, once more (nothing when every suite passed).
print_failures() {
  [ -s "${PACT_FAILURES_FILE}" ] || return 0
  echo "== what failed (repeated from above)"
  head -n 300 "${PACT_FAILURES_FILE}"
}
