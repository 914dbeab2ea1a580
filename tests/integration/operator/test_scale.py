"""The scale rig at N = 20 (bench/scale/): correctness only, never time.

A real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) on loopback,
kwok's fake nodes moving pods to Running and Ready, and the operator as a process with the
production arguments. 20 WorkerClusters x 5 pods must all become Ready with no duplicate pod at
any moment, heal 10 deleted pods, scale to 2, and the operator must log no error and fail no
reconcile.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator

import pytest
from support.paths import REPO

pytestmark = pytest.mark.integration

sys.path.insert(0, str(REPO / "bench" / "scale"))  # the rig's modules (never the repo root)

import measure  # noqa: E402
import rig as scale_rig  # noqa: E402
import run as scale_run  # noqa: E402
import workload  # noqa: E402

N, PODS, SCALED = 20, 5, 2
TIMEOUT = 180


@pytest.fixture(scope="module")
def rig(tmp_path_factory) -> Iterator[scale_rig.Rig]:
    r = scale_rig.Rig(workdir=tmp_path_factory.mktemp("scale"), nodes=2)
    try:
        try:
            r.start()
        except RuntimeError as error:
            pytest.fail(str(error))
        yield r
    finally:
        r.stop()


def test_twenty_worker_clusters_ready_healed_scaled_without_duplicates(rig):
    assert rig.api is not None
    watch = workload.PodWatch(rig.api)
    driver = workload.Driver(rig.api)
    try:
        rig.plane.wait(lambda: watch.informer.lists > 0, 30, "pod watch")
        names = workload.names(workload.WC, N)
        watch.want(workload.WC, names, PODS)
        driver.apply(workload.WC, names, PODS)
        ready = watch.wait_settled(workload.WC, TIMEOUT, "apply")
        assert ready is not None, f"{watch.unsettled(workload.WC)} WorkerClusters never Ready"
        assert len(watch.all_live(workload.WC)) == N * PODS

        victims = random.Random(20).sample(watch.all_live(workload.WC), N * PODS // 10)
        driver.delete_pods(victims)
        assert watch.wait_settled(workload.WC, TIMEOUT, "heal") is not None, "not healed"
        uids = {p["metadata"]["uid"] for p in watch.all_live(workload.WC)}
        assert not uids & {v["metadata"]["uid"] for v in victims}

        watch.want(workload.WC, names, SCALED)
        driver.scale(workload.WC, names, SCALED)
        assert watch.wait_settled(workload.WC, TIMEOUT, "scale") is not None, "not scaled"

        side = watch.sides[workload.WC]
        assert side.duplicates == 0, f"duplicate pods in {sorted(side.duplicate_instances)}"
        assert driver.errors == []
        rig.plane.wait(
            lambda: scale_run.lost_clusters(rig, N, SCALED) == [], 60, "every status at 2 Ready"
        )
        assert rig.operator is not None and rig.operator.poll() is None, "operator exited"
        assert scale_run.operator_errors(rig.operator_log) == []
        # A failed reconcile is logged as a warning (the work queue retries it): its counter.
        metrics = measure.parse_metrics(rig.operator_metrics_text() or "")
        assert "workerlab_reconcile_time_seconds_count" in metrics, "no operator metrics"
        assert metrics.get("workerlab_reconcile_errors_total", 0.0) == 0.0
    finally:
        watch.stop()
