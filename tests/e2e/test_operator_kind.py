"""The operator as installed by `kubectl apply -k manifests/` on the kind cluster, with real
worker pods: Ready status, processes read through the pod proxy, replacement, rolling update
with no failed request, crash loop reported as Degraded, garbage collection.

Needs the kind cluster (`make up`: context kind-workerlab) with the images workerlab/operator:dev
and workerlab/worker:dev loaded. Without it these tests FAIL (they never skip) and say why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from workerlab.operator.model import STUCK_REASONS

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CONTEXT = os.environ.get("WORKERLAB_KUBE_CONTEXT", "kind-workerlab")
TOOL_DIRS = ("/root/.cache/workerlab/k8s/v1.34.4/bin", "/root/.cache/workerlab/bin")
NS = "workerlab"
NODE_PORT_URL = "http://127.0.0.1:30080"  # kind maps the node port to the host's loopback


def kubectl_binary() -> str:
    for folder in TOOL_DIRS:
        if (Path(folder) / "kubectl").exists():
            return str(Path(folder) / "kubectl")
    return shutil.which("kubectl") or "kubectl"


def kubectl(*args: str, stdin: str | None = None, timeout: float = 120):
    return subprocess.run(
        [kubectl_binary(), "--context", CONTEXT, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ok(*args: str, stdin: str | None = None, timeout: float = 120) -> str:
    result = kubectl(*args, stdin=stdin, timeout=timeout)
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


def get(*args: str) -> dict:
    return json.loads(ok("get", *args, "-o", "json"))


def wait_for(check: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as error:
            last = error
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def cluster():
    try:
        probe = kubectl("version", "--request-timeout=5s", timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.fail(f"kind cluster not reachable (context {CONTEXT}): {error}; run `make up`")
    if probe.returncode != 0:
        pytest.fail(
            f"kind cluster not reachable (context {CONTEXT}): {probe.stderr.strip()[:300]}; "
            "run `make up` first"
        )
    ok("apply", "-k", str(REPO / "manifests"))
    ok("wait", "--for=condition=Established", "crd/workerclusters.workerlab.dev", "--timeout=60s")
    ok(
        "rollout",
        "status",
        "deployment/workerlab-operator",
        "-n",
        "workerlab-system",
        "--timeout=180s",
        timeout=200,
    )
    yield
    kubectl("delete", "wc", "--all", "-n", NS, "--timeout=120s", timeout=150)


@pytest.fixture(scope="module")
def demo(cluster):
    ok("apply", "-f", str(REPO / "manifests" / "samples" / "demo.yaml"))
    ok("wait", "--for=condition=Ready", "wc/demo", "-n", NS, "--timeout=180s", timeout=200)
    return "demo"


def pods_of(name: str) -> list[dict]:
    items = get("pods", "-n", NS, "-l", f"app.kubernetes.io/instance={name}")["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def test_sample_becomes_ready_with_processes_counted(demo):
    status = wait_for(
        lambda: (s := get("wc", "demo", "-n", NS)["status"])["readyProcesses"] == 4 and s,
        60,
        "readyProcesses == 2 pods x 2 processes",
    )
    assert status["readyReplicas"] == 2 and status["phase"] == "Ready"
    assert all(p.get("processes") == 2 for p in status["pods"])
    columns = ok("get", "wc", "demo", "-n", NS)
    assert "PROCESSES" in columns and "Ready" in columns


def test_service_answers_on_the_node_port(demo):
    def answers():
        with urllib.request.urlopen(f"{NODE_PORT_URL}/processes", timeout=3) as response:
            return response.status == 200

    wait_for(answers, 60, "the NodePort Service to answer on 127.0.0.1:30080")


def test_deleted_pod_is_replaced_and_cluster_ready_again(demo):
    victim = pods_of("demo")[0]["metadata"]["name"]
    ok("delete", "pod", victim, "-n", NS, "--wait=false")
    wait_for(
        lambda: (
            victim not in {p["metadata"]["name"] for p in pods_of("demo")}
            and len(pods_of("demo")) == 2
        ),
        5,
        "a replacement pod within 5 s",
    )
    ok("wait", "--for=condition=Ready", "wc/demo", "-n", NS, "--timeout=120s", timeout=150)


def test_scale_and_rollout_serve_every_request(demo):
    ok("scale", "wc/demo", "-n", NS, "--replicas=3")
    ok("wait", "--for=condition=Ready", "wc/demo", "-n", NS, "--timeout=120s", timeout=150)
    ok("patch", "wc", "demo", "-n", NS, "--type=merge", "-p", '{"spec":{"processesPerPod":3}}')
    failures, sent = 0, 0
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and sent < 3000:
        try:
            with urllib.request.urlopen(f"{NODE_PORT_URL}/processes", timeout=5) as response:
                failures += response.status != 200
        except (urllib.error.URLError, OSError):
            failures += 1
        sent += 1
        status = get("wc", "demo", "-n", NS)["status"] if sent % 20 == 0 else None
        if status and status["phase"] == "Ready" and status["updatedReplicas"] == 3:
            break
        time.sleep(0.05)
    assert failures == 0, f"{failures} of {sent} requests failed during the rollout"
    ok("wait", "--for=condition=Ready", "wc/demo", "-n", NS, "--timeout=120s", timeout=150)


def test_crash_loop_is_reported_as_degraded(cluster):
    manifest = {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": "crashy", "namespace": NS},
        # A memory limit no Python interpreter fits in: the container dies at every start.
        "spec": {"replicas": 1, "resources": {"limits": {"memory": "8Mi"}}},
    }
    ok("apply", "-f", "-", stdin=json.dumps(manifest))

    def degraded():
        conditions = get("wc", "crashy", "-n", NS).get("status", {}).get("conditions", [])
        return next(
            (c for c in conditions if c["type"] == "Degraded" and c["status"] == "True"), None
        )

    condition = wait_for(degraded, 180, "Degraded condition")
    assert condition["reason"] in STUCK_REASONS, condition
    assert get("wc", "crashy", "-n", NS)["status"]["phase"] == "Degraded"
    time.sleep(20)
    events = ok(
        "get",
        "events",
        "-n",
        NS,
        "-o",
        "name",
        "--field-selector",
        "involvedObject.name=crashy,reason=CreatedPod",
    )
    assert len(events.split()) == 1, "a crash-looping pod is left to the kubelet, not recreated"
    ok("delete", "wc", "crashy", "-n", NS, "--timeout=60s")


def test_deleting_the_cluster_leaves_nothing_behind(demo):
    ok("delete", "wc", "demo", "-n", NS, "--timeout=60s")
    wait_for(
        lambda: (
            not get("pods", "-n", NS, "-l", "app.kubernetes.io/instance=demo")["items"]
            and kubectl("get", "service", "demo", "-n", NS).returncode != 0
        ),
        90,
        "pods and Service garbage-collected",
    )
