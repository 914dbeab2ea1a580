#!/usr/bin/env bash
# The pytest part of `make test`: every suite, in three lanes that run at the same time. Most of
# an e2e test's time is spent waiting on the cluster (pods starting, metric windows, an idle
# stream), so the wall time is about the longest lane's, not the sum.
#
#   shared lane:    the e2e tests that use the lab's own objects (wc/demo, the add-ons, the
#                   operator's settings), one after another as a learner would. Then, once the
#                   other lanes are done with the lab's cluster, the tests that change it for
#                   everyone (markers in tests/e2e/conftest.py): lab 3 and test_kind install the
#                   operator from manifests/ over make up's (another default image tag: every
#                   WorkerCluster without spec.image rolls), lab 10's drill stops the API server.
#   isolated lane:  the e2e suites that work in namespaces of their own (the class, the HPA,
#                   changes in place) first, then unit and integration tests (no cluster).
#   dashboard lane: the dashboard's browser tests (a throwaway namespace; their 10-minute idle
#                   period costs no CPU), then the own-cluster suite (a second, multi-node kind
#                   cluster installed by helm alone, learners in network namespaces, helm upgrade
#                   and uninstall), which needs nothing of the lab's cluster but its images.
# Each lane prints its slowest tests: that is how to rebalance them.
#
# The other lanes' output is written to logs and printed when all are done; follow them
# meanwhile with `tail -f` on the paths printed first. Any lane failing fails the run, and so
# does a lane part that collected nothing (pytest's exit code 5).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
read -r -a extra <<<"${PYTEST_ARGS:-}"
own_namespace=(tests/e2e/class tests/e2e/cluster/test_metrics.py tests/e2e/cluster/test_in_place.py)
shared=(tests/e2e --ignore=tests/e2e/dashboard --ignore=tests/e2e/owncluster)
for path in "${own_namespace[@]}"; do shared+=("--ignore=$path"); done
late="replaces_operator or stops_api_server"

logs=${WORKERLAB_TEST_LOGS:-/tmp/workerlab-test-logs}
mkdir -p "$logs"
started=$(date +%s)
rm -f "$logs"/*.done
# A lane part: pytest, then NAME.done in $logs when the lane's next part no longer needs the
# lab's cluster; "" for none. Its exit code: pytest's.
part() { # DONE PATHS...
  local done=$1
  shift
  "$BIN/pytest" "$@" --durations=20 "${extra[@]}"
  local rc=$?
  [ -n "$done" ] && touch "$logs/$done.done"
  return $rc
}
background() { # NAME DONE PATHS_1 -- PATHS_2: a lane of two parts in the background
  local name=$1 done=$2
  shift 2
  local first=() second=()
  while [ "$1" != "--" ]; do first+=("$1"); shift; done
  shift
  second=("$@")
  rm -f "$logs/$name-lane.end"
  echo "test: $name lane (${first[*]}, then ${second[*]}) -> $logs/$name-lane.log"
  (
    part "$done" "${first[@]}"
    rc=$?
    part "" "${second[@]}"
    rc2=$?
    date +%s >"$logs/$name-lane.end" # its own end, not when the shared lane waited for it
    [ "$rc" -ne 0 ] && exit $rc
    exit $rc2
  ) >"$logs/$name-lane.log" 2>&1 &
}
background isolated isolated-e2e "${own_namespace[@]}" -- tests/unit tests/integration
isolated_pid=$!
background dashboard dashboard-e2e tests/e2e/dashboard -- tests/e2e/owncluster
dashboard_pid=$!
echo "test: shared lane (tests/e2e but those) here:"
"$BIN/pytest" "${shared[@]}" -m "not ($late)" --durations=20 "${extra[@]}"
shared_rc=$?
waited=$(date +%s)
for lane in "isolated-e2e $isolated_pid" "dashboard-e2e $dashboard_pid"; do
  read -r done pid <<<"$lane" # bounded by the lane's own pytest timeouts
  while [ ! -e "$logs/$done.done" ] && kill -0 "$pid" 2>/dev/null; do sleep 5; done
done
echo "test: shared lane, the tests that change the lab's cluster for everyone (waited" \
  "$(($(date +%s) - waited)) s for the other lanes to be done with it):"
"$BIN/pytest" "${shared[@]}" -m "$late" --durations=10 "${extra[@]}"
late_rc=$?
[ "$shared_rc" -eq 0 ] && shared_rc=$late_rc
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
