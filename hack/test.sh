#!/usr/bin/env bash
# The pytest part of `make test`: every suite, in three lanes that run at the same time. Most of
# an e2e test's time is spent waiting on the cluster (pods starting, metric windows, an idle
# stream), so the wall time is about the longest lane's, not the sum.
#
#   shared lane:    the e2e tests that use the lab's own objects (wc/demo, the add-ons, the
#                   operator's settings), one after another as a learner would. Lab 10's drill
#                   stops the API server: it runs last (tests/e2e/conftest.py), when the other
#                   lanes are done with the lab's cluster.
#   isolated lane:  the e2e suites that work in namespaces of their own (the class, the HPA,
#                   changes in place)
#                   first, then unit and integration tests (no cluster).
#   dashboard lane: the dashboard's browser tests (a throwaway namespace; their 10-minute idle
#                   period costs no CPU), then the own-cluster suite (a second, multi-node kind
#                   cluster installed by helm alone, learners in network namespaces, helm upgrade
#                   and uninstall), which needs nothing of the lab's cluster but its images.
# Each lane prints its 20 slowest tests: that is how to rebalance them.
#
# The other lanes' output is written to logs and printed when all are done; follow them
# meanwhile with `tail -f` on the paths printed first. Any lane failing fails the run, and so
# does a lane that collected nothing (pytest's exit code 5).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
read -r -a extra <<<"${PYTEST_ARGS:-}"
own_namespace=(tests/e2e/class tests/e2e/cluster/test_metrics.py tests/e2e/cluster/test_in_place.py)
isolated=("${own_namespace[@]}" tests/unit tests/integration)
dashboard=(tests/e2e/dashboard tests/e2e/owncluster)
shared=(tests/e2e --ignore=tests/e2e/dashboard --ignore=tests/e2e/owncluster)
for path in "${own_namespace[@]}"; do shared+=("--ignore=$path"); done

logs=${WORKERLAB_TEST_LOGS:-/tmp/workerlab-test-logs}
mkdir -p "$logs"
started=$(date +%s)
background() { # NAME PATHS...: a lane in the background, its log and its end time in $logs
  local name=$1
  shift
  rm -f "$logs/$name-lane.end"
  echo "test: $name lane ($*) -> $logs/$name-lane.log"
  (
    "$BIN/pytest" "$@" --durations=20 "${extra[@]}" >"$logs/$name-lane.log" 2>&1
    rc=$?
    date +%s >"$logs/$name-lane.end" # its own end, not when the shared lane waited for it
    exit $rc
  ) &
}
background isolated "${isolated[@]}"
isolated_pid=$!
background dashboard "${dashboard[@]}"
dashboard_pid=$!
echo "test: shared lane (tests/e2e but those) here:"
"$BIN/pytest" "${shared[@]}" --durations=20 "${extra[@]}"
shared_rc=$?
shared_s=$(($(date +%s) - started))
wait "$isolated_pid"
isolated_rc=$?
wait "$dashboard_pid"
dashboard_rc=$?

lane_seconds() { echo $(($(cat "$logs/$1-lane.end" 2>/dev/null || date +%s) - started)); }
for name in isolated dashboard; do
  echo
  echo "================ $name lane ================"
  cat "$logs/$name-lane.log"
done
echo
verdict() { # NAME RC SECONDS
  case $2 in
    0) echo "test: $1 lane passed in $3 s" ;;
    5) echo "test: $1 lane collected no tests: failing" ;;
    *) echo "test: $1 lane FAILED (pytest exit $2) after $3 s" ;;
  esac
}
verdict shared "$shared_rc" "$shared_s"
verdict isolated "$isolated_rc" "$(lane_seconds isolated)"
verdict dashboard "$dashboard_rc" "$(lane_seconds dashboard)"
[ "$shared_rc" -eq 0 ] && [ "$isolated_rc" -eq 0 ] && [ "$dashboard_rc" -eq 0 ]
