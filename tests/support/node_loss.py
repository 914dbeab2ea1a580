"""A machine stopped beside a WorkerCluster and a Deployment of the same pods: shared by the
own-cluster e2e test (tests/e2e/owncluster/test_d_machine_loss.py) and the node-loss benchmark
(bench/nodeloss/run.py).

`side_by_side` makes wc/survivor and deployment/baseline (the operator's own pod template, 2 pods
one per worker, each behind a NodePort); `stop_a_machine` freezes a kind node (`docker pause`: no
heartbeat, no answer on any port), sends bounded load on fresh connections from the host to the
surviving worker's NodePorts, and times both sides back to full Ready capacity; the caller
unpauses. Nothing here asserts: the test and the bench judge the figures.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Protocol

from workerlab.operator.model import WorkerCluster
from workerlab.operator.templates import pod_template

WC, DEPLOYMENT = "survivor", "baseline"
SELECTORS = {WC: f"app.kubernetes.io/instance={WC}", DEPLOYMENT: f"app={DEPLOYMENT}"}
CLIENTS = 3  # per side; each request on a fresh connection, 2 s timeout
MAX_REQUESTS = 20000  # per client: the load is bounded in count and in time


class Cluster(Protocol):
    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 200) -> str: ...
    def get(self, *args: str) -> dict[str, Any]: ...


class Load(threading.Thread):
    """GETs on fresh connections until `until` (monotonic) or MAX_REQUESTS; failures timed."""

    def __init__(self, url: str, until: float) -> None:
        super().__init__(daemon=True)
        self.url, self.until = url, until
        self.ok = 0
        self.failed_at: list[float] = []

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


def docker(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])}...: {done.stderr.strip()[-2000:]}")
    return done.stdout


def node_address(cluster: Cluster, node: str) -> str:
    addresses = cluster.get("node", node)["status"]["addresses"]
    return str(next(a["address"] for a in addresses if a["type"] == "InternalIP"))


def live_pods(cluster: Cluster, namespace: str, side: str) -> list[dict]:
    pods = cluster.get("pods", "-n", namespace, "-l", SELECTORS[side])["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def ready_away_from(pods: list[dict], node: str) -> int:
    def ready(pod: dict) -> bool:
        conditions = pod.get("status", {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    return sum(1 for p in pods if p["spec"].get("nodeName") != node and ready(p))


def running_containers(node: str, pod: str) -> list[str]:
    """The containers of `pod` (by name) that containerd on the kind node `node` still runs."""
    ids = docker(
        "exec", node, "ctr", "-n", "k8s.io", "containers", "ls", "-q",
        f'labels."io.kubernetes.pod.name"=={pod}',
    ).split()  # fmt: skip
    tasks = docker("exec", node, "ctr", "-n", "k8s.io", "tasks", "ls").splitlines()[1:]
    return [t.split()[0] for t in tasks if t.split() and t.split()[0] in ids and "RUNNING" in t]


def side_by_side(cluster: Cluster, namespace: str, image: str | None = None) -> None:
    """wc/survivor, then deployment/baseline with the same pods (the WorkerCluster's image as its
    status says), one pod per worker each, each behind a NodePort; both Ready."""
    manifests: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": namespace,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        },
        {
            "apiVersion": "workerlab.dev/v1alpha1",
            "kind": "WorkerCluster",
            "metadata": {"name": WC, "namespace": namespace},
            "spec": {
                "replicas": 2,
                "processesPerPod": 1,
                "service": {"type": "NodePort"},
                **({"image": image} if image else {}),
            },
        },
    ]
    for manifest in manifests:
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
    cluster.kubectl("-n", namespace, "wait", "--for=condition=Ready", f"wc/{WC}", "--timeout=240s")
    wc = cluster.get("wc", WC, "-n", namespace)
    wc["spec"]["image"] = wc["status"]["image"]
    spec = pod_template(WorkerCluster.from_body(wc))["spec"]
    spec.pop("affinity", None)
    spec["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "nodeTaintsPolicy": "Honor",
            "labelSelector": {"matchLabels": {"app": DEPLOYMENT}},
        }
    ]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": DEPLOYMENT, "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": DEPLOYMENT}},
            "template": {"metadata": {"labels": {"app": DEPLOYMENT}}, "spec": spec},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": DEPLOYMENT, "namespace": namespace},
        "spec": {
            "type": "NodePort",
            "selector": {"app": DEPLOYMENT},
            "ports": [{"port": 80, "targetPort": 8000}],
        },
    }
    for manifest in (deployment, service):
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
    cluster.kubectl(
        "-n", namespace, "rollout", "status", f"deployment/{DEPLOYMENT}", "--timeout=240s"
    )


@dataclass
class Outcome:
    """What one stop measured; seconds count from the `docker pause`."""

    lost: str
    window_s: float
    full_capacity_s: dict[str, float | None] = field(default_factory=dict)
    ready_at_end: dict[str, int] = field(default_factory=dict)
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        return {
            "lost_node": self.lost,
            "window_s": self.window_s,
            "full_capacity_s": {
                k: None if v is None else round(v, 1) for k, v in self.full_capacity_s.items()
            },
            "ready_pods_at_window_end": self.ready_at_end,
            "requests": self.requests,
        }


def stop_a_machine(
    cluster: Cluster, namespace: str, lost: str, survivor_node: str, window_s: float
) -> Outcome:
    """Pause `lost` and watch for `window_s`; it stays paused (the caller unpauses, in a
    `finally`, whatever happens here)."""
    address = node_address(cluster, survivor_node)
    ports = {
        side: cluster.get("service", side, "-n", namespace)["spec"]["ports"][0]["nodePort"]
        for side in (WC, DEPLOYMENT)
    }
    stopped = time.monotonic()
    loads = {
        side: [Load(f"http://{address}:{port}/", stopped + window_s) for _ in range(CLIENTS)]
        for side, port in ports.items()
    }
    docker("pause", lost)
    outcome = Outcome(lost, window_s, {WC: None, DEPLOYMENT: None})
    for load in (x for group in loads.values() for x in group):
        load.start()
    while time.monotonic() < stopped + window_s:
        for side in (WC, DEPLOYMENT):
            pods = live_pods(cluster, namespace, side)
            if outcome.full_capacity_s[side] is None and ready_away_from(pods, lost) >= 2:
                outcome.full_capacity_s[side] = time.monotonic() - stopped
        if all(outcome.full_capacity_s.values()):
            break
        time.sleep(0.5)
    for load in (x for group in loads.values() for x in group):
        load.join(timeout=10)
    for side in (WC, DEPLOYMENT):
        outcome.ready_at_end[side] = ready_away_from(live_pods(cluster, namespace, side), lost)
        times = sorted(t - stopped for load in loads[side] for t in load.failed_at)
        outcome.requests[side] = {
            "ok": sum(load.ok for load in loads[side]),
            "failed": len(times),
            "failing_from_s": round(times[0], 1) if times else None,
            "failing_until_s": round(times[-1], 1) if times else None,
        }
    return outcome
