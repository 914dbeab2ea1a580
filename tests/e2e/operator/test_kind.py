"""The operator as installed by `kubectl apply -k manifests/` on the kind cluster (issue 4's
acceptance on kind): the sample becomes Ready (`kubectl wait`), printer columns, a deleted pod is
replaced within 5 s, Events in `kubectl describe wc`, crash loops reported as Degraded without
recreating pods, controller-runtime-style metrics.

The sample `demo` in ns workerlab is shared with other suites: it is only read here. Everything
else runs in throwaway namespaces (prefix e2e-op-). Without the cluster these tests FAIL.
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from support.paths import REPO

from workerlab.operator.model import STUCK_REASONS

# It applies manifests/ over make up's operator: run first (tests/e2e/conftest.py, hack/test.sh).
pytestmark = [pytest.mark.e2e, pytest.mark.replaces_operator]


SAMPLE_NS = "workerlab"
SAMPLE_URL = "http://127.0.0.1:30080"  # kind maps the sample's node port to the host loopback
INSTANCE = "app.kubernetes.io/instance"


def worker_cluster(name: str, namespace: str, **spec: object) -> dict:
    return {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def live_pods(kube, namespace: str, name: str) -> list[dict]:
    items = kube.get("pods", "-n", namespace, "-l", f"{INSTANCE}={name}")["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def is_ready(pod: dict) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


@pytest.fixture(scope="module")
def installed(cluster):
    cluster.ok("apply", "-k", str(REPO / "manifests"))
    cluster.ok(
        "wait", "--for=condition=Established", "crd/workerclusters.workerlab.dev", "--timeout=60s"
    )
    cluster.ok(
        "rollout",
        "status",
        "deployment/workerlab-operator",
        "-n",
        "workerlab-system",
        "--timeout=180s",
        timeout=200,
    )
    return cluster


@pytest.fixture(scope="module")
def sample(installed):
    # Create it only when missing: re-applying would undo what other suites do to it.
    if installed.run("get", "wc", "demo", "-n", SAMPLE_NS).returncode != 0:
        installed.ok("create", "-f", str(REPO / "manifests" / "samples" / "demo.yaml"))
    installed.ok(
        "wait", "--for=condition=Ready", "wc/demo", "-n", SAMPLE_NS, "--timeout=180s", timeout=200
    )
    return installed


def test_sample_is_ready_with_processes_counted_and_printer_columns(sample, wait_for):
    def settled():
        # The labs ran just before and left demo converging: wait for all of it, not a part.
        wc = sample.get("wc", "demo", "-n", SAMPLE_NS)
        status, per_pod = wc["status"], wc["spec"]["processesPerPod"]
        return (
            status["phase"] == "Ready"
            and status["readyReplicas"] == wc["spec"]["replicas"]
            and status["readyProcesses"] == status["readyReplicas"] * per_pod
            and all(p.get("processes") == per_pod for p in status["pods"])
            and wc
        )

    wc = wait_for(settled, 120, "demo Ready, readyProcesses == readyReplicas x processesPerPod")
    status = wc["status"]
    assert status["phase"] == "Ready" and status["readyReplicas"] == wc["spec"]["replicas"]
    assert all(p.get("processes") == wc["spec"]["processesPerPod"] for p in status["pods"])
    header, row = sample.ok("get", "wc", "demo", "-n", SAMPLE_NS).splitlines()[:2]
    assert header.split() == ["NAME", "DESIRED", "READY", "PROCESSES", "PHASE", "AGE"]
    values = row.split()
    assert values[1:5] == [
        str(wc["spec"]["replicas"]),
        str(status["readyReplicas"]),
        str(status["readyProcesses"]),
        "Ready",
    ]
    wide = sample.ok("get", "wc", "demo", "-n", SAMPLE_NS, "-o", "wide").splitlines()[0]
    assert "UP-TO-DATE" in wide and "PER-POD" in wide


def test_sample_answers_on_its_node_port(sample, wait_for):
    def answers():
        with urllib.request.urlopen(f"{SAMPLE_URL}/", timeout=3) as response:
            return response.status == 200 and json.load(response)

    body = wait_for(answers, 60, "the sample's NodePort Service on 127.0.0.1:30080")
    assert body["pod"].startswith("demo-")


def test_deleted_pod_is_replaced_within_5s_and_described_in_events(
    installed, namespace, wait_for, figures
):
    ns = namespace("e2e-op-kind")
    installed.apply(worker_cluster("heal", ns, replicas=2, processesPerPod=1))
    installed.ok("wait", "--for=condition=Ready", "wc/heal", "-n", ns, "--timeout=180s")
    before = {p["metadata"]["name"] for p in live_pods(installed, ns, "heal")}
    victim = sorted(before)[0]

    installed.ok("delete", "pod", victim, "-n", ns, "--wait=false")
    deleted_at = time.monotonic()
    # Polled with kubectl (~0.1 s a call): the figure is an upper bound of the reaction time.
    wait_for(
        lambda: {p["metadata"]["name"] for p in live_pods(installed, ns, "heal")} - before,
        5,
        "a replacement pod within 5 s of the deletion",
        every=0.1,
    )
    replaced_s = time.monotonic() - deleted_at
    installed.ok("wait", "--for=condition=Ready", "wc/heal", "-n", ns, "--timeout=120s")
    ready_s = time.monotonic() - deleted_at

    described = installed.ok("describe", "wc", "heal", "-n", ns)
    for reason in ("CreatedService", "CreatedPod", "Scaled", "ReplacedPod", "Ready"):
        assert reason in described, f"no {reason} Event in `kubectl describe wc heal`"
    figures(
        "operator-replace-deleted-pod",
        replacement_created_s=round(replaced_s, 2),
        cluster_ready_again_s=round(ready_s, 2),
    )


def test_crash_loop_is_degraded_steadily_and_the_pod_is_not_recreated(
    installed, namespace, wait_for
):
    ns = namespace("e2e-op-kind")
    # A memory limit no Python interpreter fits in: the container dies at every start.
    installed.apply(
        worker_cluster("crashy", ns, replicas=1, resources={"limits": {"memory": "8Mi"}})
    )
    uid = installed.get("wc", "crashy", "-n", ns)["metadata"]["uid"]

    def degraded():
        status = installed.get("wc", "crashy", "-n", ns).get("status", {})
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        return conditions.get("Degraded", {}).get("status") == "True" and (status, conditions)

    wait_for(degraded, 120, "the Degraded condition")
    # Across several kubelet restarts (its backoff: 10 s, 20 s...) it stays Degraded.
    samples = []
    for _ in range(10):
        status, conditions = degraded() or ({}, {})
        samples.append((status.get("phase"), conditions.get("Degraded", {}).get("reason")))
        time.sleep(2)
    assert all(phase == "Degraded" and reason in STUCK_REASONS for phase, reason in samples), (
        samples
    )
    # Events of this object only (a same-named earlier WorkerCluster's Events live for an hour).
    created = installed.ok(
        "get",
        "events",
        "-n",
        ns,
        "-o",
        "name",
        "--field-selector",
        f"involvedObject.uid={uid},reason=CreatedPod",
    )
    assert len(created.split()) == 1, "a crash-looping pod is left to the kubelet, not recreated"
    (pod,) = live_pods(installed, ns, "crashy")
    assert pod["status"]["containerStatuses"][0]["restartCount"] >= 1


def test_operator_serves_controller_runtime_style_metrics(installed, wait_for):
    service = "/api/v1/namespaces/workerlab-system/services/workerlab-operator-metrics:metrics"
    path = f"{service}/proxy/metrics"
    names = (
        'workerlab_reconcile_total{result="success"}',
        "workerlab_reconcile_errors_total",
        "workerlab_reconcile_time_seconds_bucket",
        "workerlab_pods_created_total",
        "workerlab_workqueue_depth",
    )

    def all_served():
        text = installed.ok("get", "--raw", path)
        missing = [name for name in names if name not in text]
        assert not missing, f"missing {missing}"  # shown as the last state on a timeout
        return True

    # Right after an operator restart the first reconciles may still be on their way.
    wait_for(all_served, 60, "every metric served")
