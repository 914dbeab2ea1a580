"""Scaling on kind: `kubectl scale` and processesPerPod (status and printer columns follow), the
scale subresource as an HPA sees it, and the operator killed mid-scale converging with no
duplicate or orphan pods.
"""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.e2e

INSTANCE = "app.kubernetes.io/instance"
OPERATOR_NS = "workerlab-system"
OPERATOR = "deployment/workerlab-operator"


def worker_cluster(name: str, namespace: str, **spec: object) -> dict:
    return {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def settled(kube, ns: str, name: str, replicas: int, per_pod: int) -> dict | None:
    """The WorkerCluster when it reached replicas x per_pod and says so, else None."""
    wc = kube.get("wc", name, "-n", ns)
    status = wc.get("status", {})
    done = (
        status.get("observedGeneration") == wc["metadata"]["generation"]
        and status.get("phase") == "Ready"
        and status.get("replicas") == replicas
        and status.get("readyReplicas") == replicas
        and status.get("updatedReplicas") == replicas
        and status.get("readyProcesses") == replicas * per_pod
    )
    return wc if done else None


def columns(kube, ns: str, name: str) -> dict[str, str]:
    header, row = kube.ok("get", "wc", name, "-n", ns, "-o", "wide").splitlines()[:2]
    return dict(zip(header.split(), row.split(), strict=True))


def live_pods(kube, ns: str, name: str) -> list[dict]:
    items = kube.get("pods", "-n", ns, "-l", f"{INSTANCE}={name}")["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def test_kubectl_scale_and_processes_per_pod_show_in_status_and_columns(
    cluster, namespace, wait_for, figures
):
    ns = namespace("e2e-op-scale")
    cluster.apply(worker_cluster("sc", ns, replicas=1, processesPerPod=1))
    wait_for(lambda: settled(cluster, ns, "sc", 1, 1), 180, "1 pod x 1 process")
    timings = {}
    for label, change, replicas, per_pod in (
        ("scale_up_1_to_3_s", ("scale", "wc/sc", "--replicas=3"), 3, 1),
        (
            "processes_1_to_3_s",
            ("patch", "wc", "sc", "--type=merge", "-p", '{"spec":{"processesPerPod":3}}'),
            3,
            3,
        ),
        ("scale_down_3_to_1_s", ("scale", "wc/sc", "--replicas=1"), 1, 3),
    ):
        started = time.monotonic()
        cluster.ok(*change, "-n", ns)
        wait_for(lambda r=replicas, p=per_pod: settled(cluster, ns, "sc", r, p), 240, label)
        timings[label] = round(time.monotonic() - started, 1)
        shown = columns(cluster, ns, "sc")
        assert (shown["DESIRED"], shown["READY"], shown["UP-TO-DATE"]) == (str(replicas),) * 3
        assert shown["PROCESSES"] == str(replicas * per_pod)
        assert (shown["PER-POD"], shown["PHASE"]) == (str(per_pod), "Ready")
        assert len(live_pods(cluster, ns, "sc")) == replicas
    figures("scale-and-processes", **timings)


def test_scale_subresource_is_valid_for_an_hpa(cluster, namespace, wait_for):
    ns = namespace("e2e-op-hpa")
    cluster.apply(worker_cluster("auto", ns, replicas=1, processesPerPod=1))
    wait_for(lambda: settled(cluster, ns, "auto", 1, 1), 180, "1 pod Ready")
    scale = cluster.get("wc", "auto", "-n", ns, "--subresource=scale")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 1
    assert (
        scale["status"]["selector"]
        == "app.kubernetes.io/instance=auto,app.kubernetes.io/name=workerlab-worker"
    )

    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "auto", "namespace": ns},
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "workerlab.dev/v1alpha1",
                "kind": "WorkerCluster",
                "name": "auto",
            },
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                }
            ],
        },
    }
    cluster.apply(hpa)

    def able_to_scale():
        status = cluster.get("hpa", "auto", "-n", ns).get("status", {})
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        return conditions.get("AbleToScale", {}).get("status") == "True" and conditions

    # The HPA controller syncs every 15 s. Reading the scale subresource must work: AbleToScale
    # says SucceededGetScale, or ReadyForNewScale once metrics-server (an add-on of the lab)
    # has the new pods' CPU and the controller computed a recommendation: a matter of timing.
    conditions = wait_for(able_to_scale, 60, "HPA condition AbleToScale=True")
    reason = conditions["AbleToScale"]["reason"]
    assert reason in ("SucceededGetScale", "ReadyForNewScale"), conditions
    assert "WorkerCluster/auto" in cluster.ok("get", "hpa", "auto", "-n", ns)


def operator_pod(kube) -> dict:
    items = kube.get("pods", "-n", OPERATOR_NS, "-l", "app.kubernetes.io/name=workerlab-operator")
    running = [p for p in items["items"] if not p["metadata"].get("deletionTimestamp")]
    assert len(running) == 1, [p["metadata"]["name"] for p in running]
    return running[0]


def test_operator_killed_mid_scale_converges_without_duplicates_or_orphans(
    cluster, namespace, wait_for, figures
):
    ns = namespace("e2e-op-kill")
    first, final = 6, 4
    cluster.apply(worker_cluster("mid", ns, replicas=1, processesPerPod=1))
    wc = wait_for(lambda: settled(cluster, ns, "mid", 1, 1), 180, "1 pod Ready")
    victim = operator_pod(cluster)["metadata"]["name"]

    try:
        cluster.ok("scale", "wc/mid", "-n", ns, f"--replicas={first}")
        # Kill it while it scales (its new pods exist, none Ready yet), with no grace at all...
        wait_for(lambda: len(live_pods(cluster, ns, "mid")) > 1, 30, "the scale-up to begin", 0.1)
        killed_at = time.monotonic()
        cluster.ok("delete", "pod", victim, "-n", OPERATOR_NS, "--grace-period=0", "--force")
        pods_when_killed = len(live_pods(cluster, ns, "mid"))
        # ...and change the target while no operator runs: its successor must resume from there.
        cluster.ok("scale", "wc/mid", "-n", ns, f"--replicas={final}")
        cluster.ok("rollout", "status", OPERATOR, "-n", OPERATOR_NS, "--timeout=180s", timeout=200)
        wait_for(lambda: settled(cluster, ns, "mid", final, 1), 240, f"{final} pods Ready")
        converged_s = time.monotonic() - killed_at
    finally:
        # Whatever happened, leave one operator instance running for the other suites.
        cluster.run("rollout", "status", OPERATOR, "-n", OPERATOR_NS, "--timeout=180s", timeout=200)

    time.sleep(3)  # a duplicate would show up now, if two instances had both acted
    live = [
        p
        for p in cluster.get("pods", "-n", ns)["items"]
        if not p["metadata"].get("deletionTimestamp")
    ]
    owners = [[r["uid"] for r in p["metadata"].get("ownerReferences") or []] for p in live]
    assert len(live) == final, [p["metadata"]["name"] for p in live]
    assert owners == [[wc["metadata"]["uid"]]] * final, "every pod owned by it, none orphaned"
    assert len({p["metadata"]["labels"]["workerlab.dev/template-hash"] for p in live}) == 1
    figures(
        "operator-killed-mid-scale",
        scaled_to=first,
        pods_when_killed=pods_when_killed,
        rescaled_while_down_to=final,
        converged_after_kill_s=round(converged_s, 1),
        final_pods=len(live),
    )
