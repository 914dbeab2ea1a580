"""Under a bounded load from the host through a NodePort Service (127.0.0.1:3008x):
pods deleted repeatedly are replaced with no failed request (graceful deletion: preStop keeps a
terminating pod serving while kube-proxy catches up), and a template change rolls out with no
failed request either. Figures: requests sent/failed, heal times, rollout duration.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field

import pytest

pytestmark = pytest.mark.e2e

INSTANCE = "app.kubernetes.io/instance"
HEAL_PORT, ROLLOUT_PORT = 30083, 30084  # this suite's NodePorts (kind maps them to 127.0.0.1)
DELETIONS = 3


@dataclass
class Load:
    """`clients` threads GET `url` in a loop until stop(), max_requests or max_seconds."""

    url: str
    clients: int = 4
    max_requests: int = 30_000
    max_seconds: float = 240.0
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    pods: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _client(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if self.sent >= self.max_requests:
                    return
                self.sent += 1
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    pod = json.load(response).get("pod")
                with self._lock:
                    self.pods.add(pod)
            except Exception as error:  # any failure counts: refused, reset, timeout, 5xx
                with self._lock:
                    self.failed += 1
                    if len(self.errors) < 5:
                        self.errors.append(repr(error))
            time.sleep(0.01)

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._client) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)


@pytest.fixture
def load_namespace(cluster, namespace):
    """A namespace whose NodePorts are released at teardown, before the next run wants them
    (the namespace itself is deleted in the background, which can take a while)."""
    ns = namespace("e2e-op-load")
    yield ns
    cluster.run("delete", "wc", "--all", "-n", ns, "--timeout=60s", timeout=90)
    cluster.run("delete", "service", "--all", "-n", ns, "--timeout=60s", timeout=90)


def worker_cluster(name: str, namespace: str, node_port: int, **spec: object) -> dict:
    return {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"service": {"type": "NodePort", "nodePort": node_port}, **spec},
    }


def pods(kube, ns: str, name: str) -> list[dict]:
    items = kube.get("pods", "-n", ns, "-l", f"{INSTANCE}={name}")["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def ready_names(kube, ns: str, name: str) -> set[str]:
    return {
        p["metadata"]["name"]
        for p in pods(kube, ns, name)
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions") or []
        )
    }


def serving(kube, ns: str, name: str, port: int, wait_for) -> None:
    """Ready, and every pod answers through the Service (so the load starts on a warm path)."""
    kube.ok("wait", "--for=condition=Ready", f"wc/{name}", "-n", ns, "--timeout=180s", timeout=200)
    expected = ready_names(kube, ns, name)

    def all_pods_seen():
        with Load(f"http://127.0.0.1:{port}/", clients=2, max_requests=60, max_seconds=10) as load:
            time.sleep(1.5)
        return load.failed == 0 and expected <= load.pods

    wait_for(all_pods_seen, 60, f"every pod answering on 127.0.0.1:{port}")


def test_pods_deleted_under_load_are_replaced_without_failed_requests(
    cluster, load_namespace, wait_for, figures
):
    ns = load_namespace
    replicas = 3
    cluster.apply(worker_cluster("heal", ns, HEAL_PORT, replicas=replicas, processesPerPod=1))
    serving(cluster, ns, "heal", HEAL_PORT, wait_for)

    heal_times, created_times = [], []
    started = time.monotonic()
    with Load(f"http://127.0.0.1:{HEAL_PORT}/") as load:
        for _ in range(DELETIONS):
            before = ready_names(cluster, ns, "heal")
            assert len(before) == replicas
            victim = sorted(before)[0]
            cluster.ok("delete", "pod", victim, "-n", ns, "--wait=false")
            deleted_at = time.monotonic()
            wait_for(
                lambda b=before: {p["metadata"]["name"] for p in pods(cluster, ns, "heal")} - b,
                5,
                "the replacement pod",
                every=0.1,
            )
            created_times.append(round(time.monotonic() - deleted_at, 2))
            wait_for(
                lambda b=before: (
                    len(ready_names(cluster, ns, "heal") - b) == 1
                    and len(ready_names(cluster, ns, "heal")) == replicas
                ),
                120,
                "the replacement Ready",
                every=0.2,
            )
            heal_times.append(round(time.monotonic() - deleted_at, 2))
        time.sleep(3)  # the last victim drains (preStop) while the load goes on
    duration = time.monotonic() - started

    figures(
        "operator-heal-under-load",
        deletions=DELETIONS,
        requests=load.sent,
        failed_requests=load.failed,
        error_samples=load.errors,
        replacement_created_s=created_times,
        heal_to_ready_s=heal_times,
        duration_s=round(duration, 1),
    )
    assert load.failed == 0, f"{load.failed} of {load.sent} requests failed: {load.errors}"
    assert len(ready_names(cluster, ns, "heal")) == replicas


def test_rollout_of_a_template_change_under_load_fails_no_request(
    cluster, load_namespace, wait_for, figures
):
    ns = load_namespace
    replicas = 3
    cluster.apply(worker_cluster("roll", ns, ROLLOUT_PORT, replicas=replicas, processesPerPod=1))
    serving(cluster, ns, "roll", ROLLOUT_PORT, wait_for)
    old = {p["metadata"]["name"] for p in pods(cluster, ns, "roll")}

    def rolled():
        wc = cluster.get("wc", "roll", "-n", ns)
        status = wc.get("status", {})
        return (
            status.get("observedGeneration") == wc["metadata"]["generation"]
            and status.get("phase") == "Ready"
            and status.get("updatedReplicas") == replicas
            and not old & {p["metadata"]["name"] for p in pods(cluster, ns, "roll")}
        )

    with Load(f"http://127.0.0.1:{ROLLOUT_PORT}/") as load:
        started = time.monotonic()
        patch = {"spec": {"env": [{"name": "ROLLOUT", "value": "2"}]}}
        cluster.ok("patch", "wc", "roll", "-n", ns, "--type=merge", "-p", json.dumps(patch))
        wait_for(rolled, 240, "every pod replaced by the new template and Ready", every=1)
        rollout_s = time.monotonic() - started
        time.sleep(3)  # the last old pod drains while the load goes on

    figures(
        "operator-rollout-under-load",
        replicas=replicas,
        requests=load.sent,
        failed_requests=load.failed,
        error_samples=load.errors,
        rollout_s=round(rollout_s, 1),
        pods_answering=len(load.pods),
    )
    assert load.failed == 0, f"{load.failed} of {load.sent} requests failed: {load.errors}"
