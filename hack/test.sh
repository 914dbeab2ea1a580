#!/usr/bin/env bash
# The pytest part of `make test`: every suite, in two lanes that run at the same time. Most of an
# e2e test's time is spent waiting on the cluster (pods starting, metric windows, an idle
# stream), so the wall time is about the longer lane's, not the sum.
#
#   shared lane:   the e2e tests on the lab cluster: those that use the lab's own objects
#                  (wc/demo, the add-ons, the operator's settings) one after another as a
#                  learner would, and the class suite.
#   isolated lane: unit and integration tests (no cluster), the dashboard's browser tests (in a
#                  throwaway namespace; their 10-minute idle period is most of this lane) and
#                  the multinode suite (its own kind cluster).
# Each lane prints its 20 slowest tests: that is how to rebalance them.
#
# The isolated lane's output is written to a log and printed when both lanes are done; follow
# it meanwhile with `tail -f` on the path printed first. Either lane failing fails the run, and
# so does a lane that collected nothing (pytest's exit code 5).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
read -r -a extra <<<"${PYTEST_ARGS:-}"
isolated=(tests/unit tests/integration tests/e2e/dashboard tests/e2e/cluster/test_multinode.py)
shared=(tests/e2e --ignore=tests/e2e/dashboard --ignore=tests/e2e/cluster/test_multinode.py)

logs=${WORKERLAB_TEST_LOGS:-/tmp/workerlab-test-logs}
mkdir -p "$logs"
isolated_log="$logs/isolated-lane.log"
rm -f "$logs/isolated-lane.end"
started=$(date +%s)
echo "test: isolated lane (${isolated[*]}) -> $isolated_log"
(
  "$BIN/pytest" "${isolated[@]}" --durations=20 "${extra[@]}" >"$isolated_log" 2>&1
  rc=$?
  date +%s >"$logs/isolated-lane.end"  # its own end, not when the shared lane waited for it
  exit $rc
) &
isolated_pid=$!
echo "test: shared lane (tests/e2e but those) here:"
"$BIN/pytest" "${shared[@]}" --durations=20 "${extra[@]}"
shared_rc=$?
shared_s=$(($(date +%s) - started))
wait "$isolated_pid"
isolated_rc=$?
isolated_s=$(($(cat "$logs/isolated-lane.end" 2>/dev/null || date +%s) - started))

echo
echo "================ isolated lane (${isolated[*]}) ================"
cat "$isolated_log"
echo
verdict() { # NAME RC SECONDS
  case $2 in
    0) echo "test: $1 lane passed in $3 s" ;;
    5) echo "test: $1 lane collected no tests: failing" ;;
    *) echo "test: $1 lane FAILED (pytest exit $2) after $3 s" ;;
  esac
}
verdict shared "$shared_rc" "$shared_s"
verdict isolated "$isolated_rc" "$isolated_s"
[ "$shared_rc" -eq 0 ] && [ "$isolated_rc" -eq 0 ]
