"""A machine dies (issue 23, item 3), on the instructor's cluster with a standby master (test_c).

The worker node of the *active* master is frozen (`docker pause` of its kind node: no heartbeat,
no answer on any port), with a WorkerCluster and a Deployment of the same pods (the operator's
own pod template) spread one pod per worker, each behind a NodePort. From the host, bounded load
on fresh connections to the surviving worker's NodePorts, for a fixed window after the stop:

- the standby takes over, finds the node lost after spec.nodeLossTolerationSeconds (default 30)
  and the WorkerCluster is back to 2 Ready pods on the surviving node (the Deployment waits for
  the node controller and its pods' 300 s `unreachable` toleration: measured, not awaited);
- status.lostNodes and the Events say which node was lost and which pod replaced which;
- the node back, its kubelet stops the replaced pod: nothing runs twice, lostNodes is empty.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest
from support.own_cluster import WORKERS, OwnCluster, run
from support.paths import REPO

from workerlab.api.resource import OPERATOR_LEASE
from workerlab.operator.model import WorkerCluster
from workerlab.operator.templates import pod_template

pytestmark = pytest.mark.e2e

NS = "loss-e2e"
TOLERANCE_S = 30  # the WorkerCluster default, stated here as the figure the test holds it to
WINDOW_S = 90  # load and watch this long after the stop: past the node controller's 50 s
CLIENTS = 3  # per target; each request on a fresh connection, 2 s timeout
MAX_REQUESTS = 20000


class Load(threading.Thread):
    """GETs on fresh connections until `until` (monotonic) or MAX_REQUESTS; failures timed."""

    def __init__(self, url: str, until: float) -> None:
        super().__init__(daemon=True)
        self.url, self.until, self.ok, self.failed_at = url, until, 0, []

    def run(self) -> None:
        while time.monotonic() < self.until and self.ok + len(self.failed_at) < MAX_REQUESTS:
            request = urllib.request.Request(self.url, headers={"Connection": "close"})
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    response.read()
                self.ok += 1
            except Exception:  # a refused or timed-out request: counted, with its time
                self.failed_at.append(time.monotonic())
            time.sleep(0.05)


def node_address(own_cluster: OwnCluster, node: str) -> str:
    addresses = own_cluster.get("node", node)["status"]["addresses"]
    return next(a["address"] for a in addresses if a["type"] == "InternalIP")


def live_pods(own_cluster: OwnCluster, selector: str) -> list[dict]:
    pods = own_cluster.get("pods", "-n", NS, "-l", selector)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def ready_away_from(pods: list[dict], node: str) -> int:
    def ready(pod: dict) -> bool:
        conditions = pod.get("status", {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    return sum(1 for p in pods if p["spec"].get("nodeName") != node and ready(p))


def the_two(own_cluster: OwnCluster) -> None:
    """wc/survivor and deployment/baseline: the same 2 pods, one per worker, each a NodePort."""
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NS, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }
    wc = {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": "survivor", "namespace": NS},
        "spec": {
            "replicas": 2,
            "processesPerPod": 1,
            "image": own_cluster.image("worker"),
            "service": {"type": "NodePort"},
        },
    }
    spec = pod_template(WorkerCluster.from_body(wc))["spec"]
    spec["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "nodeTaintsPolicy": "Honor",
            "labelSelector": {"matchLabels": {"app": "baseline"}},
        }
    ]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "baseline", "namespace": NS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "baseline"}},
            "template": {"metadata": {"labels": {"app": "baseline"}}, "spec": spec},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "baseline", "namespace": NS},
        "spec": {
            "type": "NodePort",
            "selector": {"app": "baseline"},
            "ports": [{"port": 80, "targetPort": 8000}],
        },
    }
    for manifest in (namespace, wc, deployment, service):
        own_cluster.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
    own_cluster.kubectl("-n", NS, "wait", "--for=condition=Ready", "wc/survivor", "--timeout=240s")
    own_cluster.kubectl("-n", NS, "rollout", "status", "deployment/baseline", "--timeout=240s")


def active_master(own_cluster: OwnCluster) -> tuple[str, str]:
    """(the operator pod holding the Lease, its node), with a standby on the other worker."""
    own_cluster.helm(
        "upgrade", "workerlab", str(REPO / "charts" / "workerlab"), "-n", "workerlab-system",
        "--reuse-values", "--set", "operator.leaderElection=true", "--set", "operator.replicas=2",
        "--wait", "--timeout", "300s",
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while True:
        pods = {
            p["metadata"]["name"]: p["spec"].get("nodeName")
            for p in own_cluster.get("pods", "-n", "workerlab-system")["items"]
            if not p["metadata"].get("deletionTimestamp")
            and p["metadata"]["name"].startswith("workerlab-operator")
        }
        lease = own_cluster.get("lease", OPERATOR_LEASE, "-n", "workerlab-system")
        holder = str(lease["spec"].get("holderIdentity") or "")
        if holder in pods and sorted(pods.values()) == sorted(WORKERS):
            return holder, str(pods[holder])
        assert time.monotonic() < deadline, f"no active master with a standby: {pods}, {holder}"
        time.sleep(1)


def test_a_lost_machine_is_healed_within_the_tolerance_and_nothing_runs_twice(
    own_cluster: OwnCluster, figures
) -> None:
    master, lost = active_master(own_cluster)
    (survivor_node,) = set(WORKERS) - {lost}
    the_two(own_cluster)
    wc_selector = "app.kubernetes.io/instance=survivor"
    before = {
        p["metadata"]["name"]: p["spec"]["nodeName"] for p in live_pods(own_cluster, wc_selector)
    }
    deployment_before = sorted(
        p["spec"]["nodeName"] for p in live_pods(own_cluster, "app=baseline")
    )
    assert sorted(before.values()) == sorted(WORKERS), f"WorkerCluster pods on {before}"
    assert deployment_before == sorted(WORKERS), f"Deployment pods on {deployment_before}"
    (stranded,) = [name for name, node in before.items() if node == lost]

    address = node_address(own_cluster, survivor_node)
    ports = {
        name: own_cluster.get("service", name, "-n", NS)["spec"]["ports"][0]["nodePort"]
        for name in ("survivor", "baseline")
    }
    stopped = time.monotonic()
    loads = {
        name: [Load(f"http://{address}:{port}/", stopped + WINDOW_S) for _ in range(CLIENTS)]
        for name, port in ports.items()
    }
    run("docker", "pause", lost)
    full: dict[str, float | None] = {"survivor": None, "baseline": None}
    try:
        for load in (x for group in loads.values() for x in group):
            load.start()
        while time.monotonic() < stopped + WINDOW_S:
            for name, selector in (("survivor", wc_selector), ("baseline", "app=baseline")):
                if (
                    full[name] is None
                    and ready_away_from(live_pods(own_cluster, selector), lost) >= 2
                ):
                    full[name] = time.monotonic() - stopped
            time.sleep(0.5)
        for load in (x for group in loads.values() for x in group):
            load.join(timeout=10)
        wc = own_cluster.get("wc", "survivor", "-n", NS)
        deployment_ready = ready_away_from(live_pods(own_cluster, "app=baseline"), lost)
    finally:
        run("docker", "unpause", lost)

    def failures(name: str) -> dict:
        times = sorted(t - stopped for load in loads[name] for t in load.failed_at)
        return {
            "ok": sum(load.ok for load in loads[name]),
            "failed": len(times),
            "failing_from_s": round(times[0], 1) if times else None,
            "failing_until_s": round(times[-1], 1) if times else None,
        }

    events = own_cluster.get(
        "events", "-n", NS, "--field-selector", "involvedObject.kind=WorkerCluster"
    )["items"]
    said = {(e["reason"], e["message"]) for e in events}
    figures(
        "node-loss",
        lost_node=lost,
        active_master_there=master,
        tolerance_s=TOLERANCE_S,
        window_s=WINDOW_S,
        workercluster_full_capacity_s=None
        if full["survivor"] is None
        else round(full["survivor"], 1),
        deployment_full_capacity_s=None if full["baseline"] is None else round(full["baseline"], 1),
        deployment_ready_pods_at_window_end=deployment_ready,
        workercluster_requests=failures("survivor"),
        deployment_requests=failures("baseline"),
    )
    assert full["survivor"] is not None, f"wc/survivor not back to 2 Ready pods in {WINDOW_S} s"
    assert full["survivor"] <= TOLERANCE_S + 25, f"healed after {full['survivor']:.1f} s"
    assert [n["name"] for n in wc["status"].get("lostNodes") or []] == [lost]
    assert any(r == "NodeLost" and lost in m for r, m in said), said
    assert any(
        r == "ReplacedPod" and f"replacing pod {stranded} of lost node {lost}" in m for r, m in said
    ), said

    # The node back: its kubelet stops the replaced pod; two pods, none of them twice.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        wc = own_cluster.get("wc", "survivor", "-n", NS)
        sandboxes = run(
            "docker",
            "exec",
            lost,
            "crictl",
            "pods",
            "--namespace",
            NS,
            "--name",
            stranded,
            "--state",
            "ready",
            "-q",
        )
        if not wc["status"].get("lostNodes") and not sandboxes.strip():
            break
        time.sleep(2)
    pods = live_pods(own_cluster, wc_selector)
    assert not wc["status"].get("lostNodes"), wc["status"].get("lostNodes")
    assert not sandboxes.strip(), f"{stranded} still runs on {lost} after the node came back"
    assert stranded not in {p["metadata"]["name"] for p in pods}
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
    own_cluster.kubectl("-n", NS, "wait", "--for=condition=Ready", "wc/survivor", "--timeout=120s")
    events = own_cluster.get("events", "-n", NS)["items"]
    assert any(e["reason"] == "NodeRecovered" and lost in e["message"] for e in events)
    own_cluster.kubectl("delete", "namespace", NS, "--wait=false")
