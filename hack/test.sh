#!/usr/bin/env bash
# The pytest part of `make test`: every suite, in three lanes that run at the same time. Most of
# an e2e test's time is spent waiting on the cluster (pods starting, metric windows, an idle
# stream), so the wall time is about the longest lane's, not the sum.
#
#   shared lane:    first the tests that install the operator from manifests/ over make up's
#                   (lab 3, test_kind: its default worker image is another tag, so every
#                   WorkerCluster without spec.image rolls), before any other lane uses the
#                   cluster; then the e2e tests that use the lab's own objects (wc/demo, the
#                   add-ons, the operator's settings), one after another as a learner would; last,
#                   once the other lanes are done with the cluster, lab 10's drill, which stops
#                   the API server. (Markers: tests/e2e/conftest.py.)
#   isolated lane:  the unit tests, then the e2e suites that work in namespaces of their own (the
#                   class, the HPA, changes in place), then the integration tests (no cluster).
#   dashboard lane: the dashboard's browser tests (a throwaway namespace; their 10-minute idle
#                   period costs no CPU), then the own-cluster suite (a second, multi-node kind
#                   cluster installed by helm alone, learners in network namespaces, helm upgrade
#                   and uninstall), which needs nothing of the lab's cluster but its images.
# Each part prints its slowest tests: that is how to rebalance them.
#
# The other lanes' output is written to logs and printed when all are done; follow them
# meanwhile with `tail -f` on the paths printed first. Any lane failing fails the run, and so
# does a part that collected nothing (pytest's exit code 5).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
read -r -a extra <<<"${PYTEST_ARGS:-}"
own_namespace=(tests/e2e/class tests/e2e/cluster/test_metrics.py tests/e2e/cluster/test_in_place.py)
shared=(tests/e2e --ignore=tests/e2e/dashboard --ignore=tests/e2e/owncluster)
for path in "${own_namespace[@]}"; do shared+=("--ignore=$path"); done

logs=${WORKERLAB_TEST_LOGS:-/tmp/workerlab-test-logs}
mkdir -p "$logs"
started=$(date +%s)
rm -f "$logs"/*.done
tests() { "$BIN/pytest" "$@" --durations=20 "${extra[@]}"; }
# Lanes tell each other where they are with files in $logs: STEP.done.
done_with() { touch "$logs/$1.done"; }
wait_for() { # STEP: until it is done, at most 30 min (a lane's pytest timeouts bound it first)
  local waited=0
  while [ ! -e "$logs/$1.done" ] && [ "$waited" -lt 1800 ]; do
    sleep 2
    waited=$((waited + 2))
  done
  echo "test: waited ${waited} s for $1"
}
worst() { # RC...: the first non-zero, else 0
  for rc in "$@"; do [ "$rc" -ne 0 ] && return "$rc"; done
  return 0
}

echo "test: isolated lane (unit; e2e in namespaces of their own; integration) -> $logs/isolated-lane.log"
(
  tests tests/unit
  unit=$?
  wait_for operator-replaced
  tests "${own_namespace[@]}"
  e2e=$?
  done_with isolated-e2e
  tests tests/integration
  integration=$?
  date +%s >"$logs/isolated-lane.end" # its own end, not when the shared lane waited for it
  worst $unit $e2e $integration
) >"$logs/isolated-lane.log" 2>&1 &
isolated_pid=$!

echo "test: dashboard lane (browser tests; own-cluster suite) -> $logs/dashboard-lane.log"
(
  wait_for operator-replaced
  tests tests/e2e/dashboard
  browser=$?
  done_with dashboard-e2e
  tests tests/e2e/owncluster
  own=$?
  date +%s >"$logs/dashboard-lane.end"
  worst $browser $own
) >"$logs/dashboard-lane.log" 2>&1 &
dashboard_pid=$!

echo "test: shared lane, first the tests that install the operator from manifests/:"
tests "${shared[@]}" -m replaces_operator
replaced=$?
done_with operator-replaced
echo "test: shared lane (tests/e2e but the other lanes'):"
tests "${shared[@]}" -m "not (replaces_operator or stops_api_server)"
rest=$?
wait_for isolated-e2e
wait_for dashboard-e2e
echo "test: shared lane, last the tests that stop the API server:"
tests "${shared[@]}" -m stops_api_server
stops=$?
worst $replaced $rest $stops
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
