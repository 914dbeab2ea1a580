"""metrics-server and the HorizontalPodAutoscaler on the kind cluster (issue 15).

- The aggregated API `v1beta1.metrics.k8s.io` is Available; `kubectl top nodes` lists the node
  and `kubectl top pods -n workerlab` lists every pod of wc/demo.
- metrics-server's RBAC reads what it scrapes and writes nothing.
- An HPA on a throwaway WorkerCluster (own namespace, restricted) reports ScalingActive=True,
  scales it up under bounded CPU load from the host (a spare NodePort on 127.0.0.1) and back down
  once the load stops; `spec.replicas` takes only the sizes the HPA announced
  (SuccessfulRescale), rising then falling once: no flapping, no other writer.

Needs `make up` (it installs manifests/addons/metrics-server). ~4-6 min, most of it in the HPA
test, which waits on real metric windows (15 s) and the HPA's sync (15 s). Without a cluster the
tests FAIL with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

METRICS_SA = "system:serviceaccount:workerlab-metrics:metrics-server"
DEMO_SELECTOR = "app.kubernetes.io/name=workerlab-worker,app.kubernetes.io/instance=demo"
TOP_TIMEOUT_S = 150  # two 15 s scrapes of a new pod, on a busy machine
ACTIVE_TIMEOUT_S = 180
SCALE_UP_TIMEOUT_S = 180  # the load runs at most this long
SCALE_DOWN_TIMEOUT_S = 240  # metrics window + 30 s stabilization + syncs, generously
MIN_REPLICAS, MAX_REPLICAS = 1, 3


def live_pods(kube, ns: str, selector: str) -> set[str]:
    pods = kube.get("pods", "-n", ns, "-l", selector)["items"]
    return {
        p["metadata"]["name"]
        for p in pods
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    }


def top_rows(kube, *args: str) -> dict[str, list[str]]:
    """`kubectl top ...` as {name: columns}; empty while metrics are not available yet."""
    result = kube.run("top", *args, "--no-headers")
    if result.returncode != 0:
        return {}
    return {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line}


def test_metrics_api_is_available(cluster, wait_for) -> None:
    def available() -> bool:
        api = cluster.get("apiservice", "v1beta1.metrics.k8s.io")
        conditions = {c["type"]: c for c in api.get("status", {}).get("conditions", [])}
        return conditions.get("Available", {}).get("status") == "True"

    wait_for(available, 120, "APIService v1beta1.metrics.k8s.io Available (make up installs it)")


def test_top_nodes_lists_the_node(cluster, wait_for) -> None:
    nodes = {n["metadata"]["name"] for n in cluster.get("nodes")["items"]}
    rows = wait_for(
        lambda: (r := top_rows(cluster, "nodes")) and set(r) == nodes and r,
        TOP_TIMEOUT_S,
        f"kubectl top nodes listing {sorted(nodes)}",
    )
    for name, columns in rows.items():
        assert columns[0].endswith("m") or columns[0].isdigit(), f"{name}: CPU {columns}"


def test_top_pods_lists_demo(cluster, wait_for) -> None:
    def listed() -> bool:
        pods = live_pods(cluster, "workerlab", DEMO_SELECTOR)
        rows = top_rows(cluster, "pods", "-n", "workerlab", "-l", DEMO_SELECTOR)
        return bool(pods) and pods <= set(rows)

    wait_for(listed, TOP_TIMEOUT_S, "kubectl top pods -n workerlab listing every pod of wc/demo")


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("get", "nodes/metrics", True),
        ("list", "pods", True),
        ("watch", "nodes", True),
        ("create", "pods", False),
        ("delete", "pods", False),
        ("get", "secrets", False),
        ("update", "nodes", False),
    ],
)
def test_metrics_server_rbac(cluster, verb: str, resource: str, allowed: bool) -> None:
    resource, _, subresource = resource.partition("/")
    extra = [f"--subresource={subresource}"] if subresource else []
    result = cluster.run(
        "auth", "can-i", verb, resource, *extra, "--all-namespaces", "--as", METRICS_SA
    )
    answer = result.stdout.strip()
    assert answer == ("yes" if allowed else "no"), f"{METRICS_SA} {verb} {resource}: {answer}"


# --- the HPA drives a WorkerCluster -----------------------------------------------------------


def hpa_manifest(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "workerlab.dev/v1alpha1",
                "kind": "WorkerCluster",
                "name": name,
            },
            "minReplicas": MIN_REPLICAS,
            "maxReplicas": MAX_REPLICAS,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 50},
                    },
                }
            ],
            # As the lab's sample: quick to shrink, so the test waits minutes, not five more.
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}},
        },
    }


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == kind:
            return c
    return {}


def rescale_sizes(kube, ns: str, name: str) -> list[int]:
    events = kube.get(
        "events",
        "-n",
        ns,
        "--field-selector",
        f"involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={name}",
    )["items"]
    sizes = []
    for event in events:
        message = event.get("message", "")
        if event.get("reason") == "SuccessfulRescale" and "New size:" in message:
            sizes.append(int(message.split("New size:")[1].split(";")[0]))
    return sizes


def changes(values: list[int]) -> list[int]:
    """The sequence without repeats: [1, 1, 3, 3, 1] -> [1, 3, 1]."""
    out: list[int] = []
    for value in values:
        if not out or out[-1] != value:
            out.append(value)
    return out


def test_hpa_scales_a_workercluster_up_under_load_and_down_after(
    cluster, namespace, node_port_service, wait_for, figures, tmp_path
) -> None:
    ns = namespace("e2e-hpa")
    name = "auto"
    # One process per pod: a pod's CPU is then one busy process at most, and the load needs
    # only a few connections to push it far past 50% of the 50m request.
    cluster.apply(
        {
            "apiVersion": "workerlab.dev/v1alpha1",
            "kind": "WorkerCluster",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": MIN_REPLICAS, "processesPerPod": 1},
        }
    )
    cluster.ok(
        "wait", "--for=condition=Ready", f"wc/{name}", "-n", ns, "--timeout=180s", timeout=190
    )
    port = node_port_service(ns, f"{name}-e2e", {"app.kubernetes.io/instance": name})
    cluster.apply(hpa_manifest(ns, name))

    hpa = wait_for(
        lambda: (
            (h := cluster.get("hpa", name, "-n", ns))
            and condition(h, "ScalingActive").get("status") == "True"
            and h
        ),
        ACTIVE_TIMEOUT_S,
        "the HPA's ScalingActive=True (it reads the pods' CPU from metrics-server)",
        every=3,
    )
    start = time.monotonic()
    samples: list[tuple[float, int, int | None]] = []  # (t, spec.replicas, hpa desiredReplicas)

    def sample() -> tuple[int, dict[str, Any]]:
        wc = cluster.get(f"wc/{name}", "-n", ns)
        h = cluster.get("hpa", name, "-n", ns)
        replicas = int(wc["spec"]["replicas"])
        samples.append(
            (round(time.monotonic() - start, 1), replicas, h["status"].get("desiredReplicas"))
        )
        return replicas, h

    # Bounded CPU load from the host through the spare NodePort: `workerlab load` stops after
    # --duration at the latest; we stop it as soon as the HPA has scaled up.
    env = dict(os.environ, WORKERLAB_LAB_HOME=str(tmp_path))  # keep the learner's journal clean
    load = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "workerlab"),
            "load",
            f"http://127.0.0.1:{port}",
            "--path",
            "/work/cpu?ms=50",
            "--concurrency",
            "8",
            "--requests",
            "100000",
            "--duration",
            str(SCALE_UP_TIMEOUT_S),
            "--no-keepalive",
            "--json",
        ],
        env=env,
        # Files, not pipes: nobody reads while it runs, and a full pipe would stall the load.
        stdout=(tmp_path / "load.out").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: sample()[0] > MIN_REPLICAS, SCALE_UP_TIMEOUT_S, "the HPA to scale up", every=3
        )
        # Keep loading until the new pods are Ready and the HPA has settled at its choice.
        wait_for(
            lambda: (
                len(live_pods(cluster, ns, f"app.kubernetes.io/instance={name}")) == sample()[0]
            ),
            120,
            "the operator to run the pods the HPA asked for",
            every=3,
        )
        peak = max(r for _, r, _ in samples)
    finally:
        load.terminate()
        try:
            load.wait(timeout=30)
        except subprocess.TimeoutExpired:
            load.kill()
            load.wait()
    stopped = time.monotonic() - start

    wait_for(
        lambda: (
            (s := sample())[0] == MIN_REPLICAS
            and s[1]["status"].get("currentReplicas") == MIN_REPLICAS
        ),
        SCALE_DOWN_TIMEOUT_S,
        f"the HPA to scale back to {MIN_REPLICAS} after the load",
        every=3,
    )
    down_after = time.monotonic() - start - stopped
    announced = rescale_sizes(cluster, ns, name)
    seen = changes([r for _, r, _ in samples])
    figures(
        "hpa-workercluster",
        scaled_up_to=peak,
        load_stopped_at_s=round(stopped, 1),
        scaled_down_after_load_s=round(down_after, 1),
        spec_replicas_changes=seen,
        hpa_sizes=announced,
        samples=len(samples),
        scaling_active_reason=condition(hpa, "ScalingActive").get("reason"),
    )
    # spec.replicas took only values the HPA announced: nobody else (the operator included)
    # writes it.
    assert set(seen) - {MIN_REPLICAS} <= set(announced), (seen, announced)
    assert MIN_REPLICAS in announced, f"the HPA never announced the shrink: {announced}"
    # Up, then down, once: no flapping while the load ran or after it stopped.
    top = seen.index(max(seen))
    assert seen[: top + 1] == sorted(seen[: top + 1]), f"not rising then falling: {seen}"
    assert seen[top:] == sorted(seen[top:], reverse=True), f"flapped after the peak: {seen}"
    assert seen[0] == MIN_REPLICAS and seen[-1] == MIN_REPLICAS and max(seen) > MIN_REPLICAS
    # ... and the operator followed it down to the pods asked for.
    wait_for(
        lambda: len(live_pods(cluster, ns, f"app.kubernetes.io/instance={name}")) == MIN_REPLICAS,
        120,
        f"the operator to shrink wc/{name} to {MIN_REPLICAS} pod(s)",
        every=3,
    )
