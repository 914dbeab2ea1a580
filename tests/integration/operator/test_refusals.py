"""No silent failure in the master (issue 25): writes a ResourceQuota refuses, against the real
API server (etcd + kube-apiserver + kube-controller-manager with the resourcequota controller,
which fills in the quotas' status that quota admission needs; no kubelet) and the real operator
as a process, with its service account's RBAC.

- A WorkerCluster asking for a NodePort where the quota allows none gets, within 30 s, a
  Degraded condition naming the quota and exactly one Warning Event; a minute later still one,
  and the operator's log holds a handful of lines about it; a spec without the NodePort clears it.
- A WorkerCluster at the quota's pod limit ("6 x 1" at the edge in lab 5): its refused creates
  are held with backoff, one FailedCreate Event, not one per retry; scaling down clears it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.control_plane import BASE_CONTROLLERS, ControlPlane
from support.operator_process import OperatorProcess
from support.paths import REPO

pytestmark = pytest.mark.integration

SVC_NS, PODS_NS = "quota-nodeports", "quota-pods"
QUOTA = "learner-quota"
WINDOW_S = 60.0
FIGURES = Path("/tmp/workerlab-integration-figures")


@pytest.fixture(scope="module")
def plane(tmp_path_factory) -> Iterator[ControlPlane]:
    plane = ControlPlane(
        tmp_path_factory.mktemp("control-plane"),
        controllers=(*BASE_CONTROLLERS, "resourcequota"),
    )
    try:
        try:
            plane.start()
        except RuntimeError as error:
            pytest.fail(str(error))
        plane.ok("apply", "-k", str(REPO / "manifests"))
        for namespace, hard in ((SVC_NS, {"services.nodeports": "0"}), (PODS_NS, {"pods": "2"})):
            plane.ok("create", "namespace", namespace)
            quota = {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": {"name": QUOTA, "namespace": namespace},
                "spec": {"hard": hard},
            }
            plane.ok("apply", "-f", "-", stdin=json.dumps(quota))
            plane.wait(
                lambda ns=namespace: (
                    plane.json("get", "resourcequota", QUOTA, "-n", ns)
                    .get("status", {})
                    .get("hard")
                ),
                60,
                f"the quota's status in {namespace} (quota admission needs it)",
            )
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="module")
def operator(plane, tmp_path_factory) -> Iterator[OperatorProcess]:
    op = OperatorProcess(plane, tmp_path_factory.mktemp("operator"), "--log-format=plain")
    op.start()
    yield op
    op.stop()


def apply_wc(plane: ControlPlane, namespace: str, name: str, spec: dict) -> None:
    body = {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    plane.ok("apply", "-f", "-", stdin=json.dumps(body))


def degraded(plane: ControlPlane, namespace: str, name: str) -> dict:
    wc = plane.json("get", "wc", name, "-n", namespace)
    conditions = {c["type"]: c for c in (wc.get("status") or {}).get("conditions") or []}
    return conditions.get("Degraded") or {}


def warnings(plane: ControlPlane, namespace: str, name: str) -> list[dict]:
    selector = f"involvedObject.kind=WorkerCluster,involvedObject.name={name},type=Warning"
    items = plane.json("get", "events", "-n", namespace, "--field-selector", selector)["items"]
    return [e for e in items if e.get("source", {}).get("component") == "workerlab-operator"]


def occurrences(events: list[dict]) -> int:
    return sum(int(e.get("count") or 1) for e in events)


def test_refused_writes_are_said_once_backed_off_and_cleared(plane, operator):
    apply_wc(plane, SVC_NS, "nodeport", {"replicas": 1, "service": {"type": "NodePort"}})
    apply_wc(plane, PODS_NS, "six", {"replicas": 6, "processesPerPod": 1})
    started = time.monotonic()

    def refused(namespace: str, name: str, reason: str) -> dict | None:
        condition = degraded(plane, namespace, name)
        if condition.get("status") == "True" and condition.get("reason") == reason:
            return condition
        return None

    service = plane.wait(lambda: refused(SVC_NS, "nodeport", "ServiceRefused"), 30, "Degraded")
    seen_after = time.monotonic() - started
    assert f"exceeded quota: {QUOTA}" in service["message"], service
    assert "services.nodeports" in service["message"], service
    pods = plane.wait(lambda: refused(PODS_NS, "six", "FailedCreate"), 30, "FailedCreate")
    assert f"exceeded quota: {QUOTA}" in pods["message"], pods
    plane.wait(lambda: warnings(plane, SVC_NS, "nodeport"), 30, "the Warning Event")
    first = warnings(plane, SVC_NS, "nodeport")
    assert [e["reason"] for e in first] == ["ServiceRefused"]
    assert QUOTA in first[0]["message"]
    log_mark = len(operator.lines())

    time.sleep(WINDOW_S)  # the operator keeps meeting the quota: no Event, few lines
    service_events = warnings(plane, SVC_NS, "nodeport")
    pod_events = warnings(plane, PODS_NS, "six")
    window = operator.lines()[log_mark:]
    about_service = [line for line in window if "nodeport" in line]
    about_pods = [line for line in window if PODS_NS in line]
    errors = [line for line in operator.lines() if "reconcile failed" in line]
    pod_count = len(plane.json("get", "pods", "-n", PODS_NS)["items"])
    figures = {
        "condition_after_s": round(seen_after, 1),
        "service_warning_events": occurrences(service_events),
        "pod_warning_events": occurrences(pod_events),
        "service_log_lines_in_window": len(about_service),
        "pod_log_lines_in_window": len(about_pods),
        "reconcile_failed_lines": len(errors),
        "window_s": WINDOW_S,
        "pods_created": pod_count,
    }
    FIGURES.mkdir(exist_ok=True)
    (FIGURES / "operator_refusals.json").write_text(json.dumps(figures, indent=2))
    print(f"\nfigures: {figures}")
    assert occurrences(service_events) == 1, service_events
    assert [e["reason"] for e in pod_events] == ["FailedCreate"], pod_events
    assert occurrences(pod_events) == 1, pod_events
    assert pod_count == 2
    assert len(about_service) <= 5, about_service
    assert len(about_pods) <= 5, about_pods
    assert errors == [], errors[:5]

    # The cause goes away: a spec without the NodePort is tried at once and clears it.
    plane.ok(
        "patch", "wc", "nodeport", "-n", SVC_NS, "--type=merge",
        "-p", '{"spec": {"service": {"type": "ClusterIP"}}}',
    )  # fmt: skip
    plane.wait(lambda: degraded(plane, SVC_NS, "nodeport").get("status") == "False", 15, "cleared")
    svc = plane.json("get", "service", "nodeport", "-n", SVC_NS)
    assert svc["spec"]["type"] == "ClusterIP"
    assert occurrences(warnings(plane, SVC_NS, "nodeport")) == 1
    plane.ok("scale", "wc", "six", "-n", PODS_NS, "--replicas=2")
    plane.wait(lambda: degraded(plane, PODS_NS, "six").get("status") == "False", 15, "cleared")
    recovered = plane.json("get", "events", "-n", SVC_NS, "--field-selector", "reason=Recovered")[
        "items"
    ]
    assert len(recovered) == 1
