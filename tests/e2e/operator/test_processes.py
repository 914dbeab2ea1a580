"""Process-level healing on kind: POST /crash (lab mode) through the API server's pod proxy kills
one uvicorn process; gunicorn's arbiter forks a new one (a new pid on /processes) while the pod
stays Running and Ready with an unchanged restart count. Without lab mode /crash does not exist.
"""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.e2e

INSTANCE = "app.kubernetes.io/instance"
PORT = 8000


def worker_cluster(name: str, namespace: str, **spec: object) -> dict:
    return {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def proxy(ns: str, pod: str, path: str) -> str:
    return f"/api/v1/namespaces/{ns}/pods/{pod}:{PORT}/proxy{path}"


def alive_pids(kube, ns: str, pod: str) -> set[int]:
    body = json.loads(kube.ok("get", "--raw", proxy(ns, pod, "/processes")))
    return {p["pid"] for p in body["processes"] if p.get("alive")}


def the_pod(kube, ns: str, name: str) -> dict:
    items = kube.get("pods", "-n", ns, "-l", f"{INSTANCE}={name}")["items"]
    (pod,) = [p for p in items if not p["metadata"].get("deletionTimestamp")]
    return pod


def test_crashed_process_is_replaced_by_the_arbiter_not_the_kubelet(
    cluster, namespace, wait_for, figures
):
    ns = namespace("e2e-op-proc")
    cluster.apply(worker_cluster("lab", ns, replicas=1, processesPerPod=2, labMode=True))
    cluster.apply(worker_cluster("plain", ns, replicas=1, processesPerPod=1))
    for name in ("lab", "plain"):
        cluster.ok("wait", "--for=condition=Ready", f"wc/{name}", "-n", ns, "--timeout=180s")
    pod = the_pod(cluster, ns, "lab")
    name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
    restarts = pod["status"]["containerStatuses"][0]["restartCount"]
    before = wait_for(
        lambda: len(pids := alive_pids(cluster, ns, name)) == 2 and pids, 30, "2 processes"
    )

    # `kubectl create --raw` is kubectl's way to POST through the pod proxy.
    answer = json.loads(
        cluster.ok("create", "--raw", proxy(ns, name, "/crash"), "-f", "-", stdin="{}")
    )
    crashed_at = time.monotonic()
    assert answer["fault"] == "crash" and answer["pid"] in before
    after = wait_for(
        lambda: (
            answer["pid"] not in (pids := alive_pids(cluster, ns, name)) and len(pids) == 2 and pids
        ),
        30,
        "the arbiter to fork a replacement process",
        every=0.2,
    )
    healed_s = time.monotonic() - crashed_at

    pod = the_pod(cluster, ns, "lab")
    assert pod["metadata"]["uid"] == uid, "the pod itself must not be replaced"
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["containerStatuses"][0]["restartCount"] == restarts
    assert pod["status"]["containerStatuses"][0]["ready"]
    new_pids = after - before
    assert len(new_pids) == 1
    # The operator's view follows (it polls /processes every 10 s).
    wait_for(
        lambda: cluster.get("wc", "lab", "-n", ns)["status"]["readyProcesses"] == 2,
        30,
        "status.readyProcesses back to 2",
    )

    plain = the_pod(cluster, ns, "plain")["metadata"]["name"]
    refused = cluster.run("create", "--raw", proxy(ns, plain, "/crash"), "-f", "-", stdin="{}")
    assert refused.returncode != 0 and "NotFound" in refused.stderr + refused.stdout, refused

    figures(
        "process-level-healing",
        crashed_pid=answer["pid"],
        new_pid=sorted(new_pids)[0],
        process_replaced_s=round(healed_s, 2),
        container_restarts_before_after=[restarts, restarts],
    )
