"""Deleting a WorkerCluster removes everything it owns (garbage collection through
ownerReferences, no finalizer): no pod, Service or Ingress left within 30 s; and 20 create/delete
cycles of the same name leave nothing behind.
"""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.e2e

OWNED = "app.kubernetes.io/managed-by=workerlab-operator"
CYCLES = 20


def worker_cluster(name: str, namespace: str, *, quick_drain: bool = False) -> dict:
    spec = {
        "replicas": 1,
        "processesPerPod": 1,
        "ingress": {"enabled": True, "host": f"{name}.test"},
    }
    if quick_drain:  # the cycles' pods serve nobody: no preStop wait, short graceful timeout
        spec |= {"preStopSleepSeconds": 0, "gracefulTimeoutSeconds": 1}
    return {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def leftovers(kube, ns: str, uid: str | None = None) -> list[str]:
    """Owned pods, Services and Ingresses (of one WorkerCluster uid, or of any)."""
    found = kube.get("pods,services,ingresses", "-n", ns, "-l", OWNED)["items"]
    if uid is not None:
        found = [
            o for o in found if uid in {r["uid"] for r in o["metadata"].get("ownerReferences", [])}
        ]
    return [f"{o['kind']}/{o['metadata']['name']}" for o in found]


def owned_set_exists(kube, ns: str, uid: str) -> bool:
    kinds = sorted({entry.split("/")[0] for entry in leftovers(kube, ns, uid)})
    return kinds == ["Ingress", "Pod", "Service"]


def what_the_operator_saw(kube, ns: str, name: str) -> str:
    """For a failure message: the WorkerCluster, what it owns, its Events, the operator's log."""
    wc = kube.run("get", "wc", name, "-n", ns, "-o", "jsonpath={.metadata.uid} {.status}").stdout
    owned = kube.run(
        "get", "pods,services,ingresses", "-n", ns, "-l", OWNED, "-o",
        "custom-columns=KIND:.kind,NAME:.metadata.name,OWNER:.metadata.ownerReferences[0].uid,"
        "DELETING:.metadata.deletionTimestamp",
    ).stdout  # fmt: skip
    events = kube.run("get", "events", "-n", ns, "--sort-by=.lastTimestamp").stdout
    log = kube.run(
        "logs", "-n", "workerlab-system", "deploy/workerlab-operator", "--since=3m"
    ).stdout
    mentions = "\n".join(line for line in log.splitlines() if ns in line)
    return (
        f"\nwc/{name}: {wc}\nowned:\n{owned}\nevents (last 20):\n"
        + "\n".join(events.splitlines()[-20:])
        + f"\noperator log lines naming {ns} (last 40):\n"
        + "\n".join(mentions.splitlines()[-40:])
    )


def test_deleted_cluster_leaves_nothing_within_30s(cluster, namespace, wait_for, figures):
    ns = namespace("e2e-op-gc")
    cluster.apply(worker_cluster("gone", ns))
    uid = cluster.get("wc", "gone", "-n", ns)["metadata"]["uid"]
    wait_for(lambda: owned_set_exists(cluster, ns, uid), 60, "pod, Service and Ingress")
    cluster.ok("wait", "--for=condition=Ready", "wc/gone", "-n", ns, "--timeout=180s")

    started = time.monotonic()
    cluster.ok("delete", "wc", "gone", "-n", ns, "--wait=false")
    wait_for(lambda: not leftovers(cluster, ns), 30, "nothing owned left", every=0.5)
    figures("delete-leaves-nothing", all_gone_s=round(time.monotonic() - started, 1))


def test_create_delete_cycles_leave_nothing_behind(cluster, namespace, wait_for, figures):
    ns = namespace("e2e-op-cycles")
    started = time.monotonic()
    for cycle in range(CYCLES):
        cluster.apply(worker_cluster("cycle", ns, quick_drain=True))
        uid = cluster.get("wc", "cycle", "-n", ns)["metadata"]["uid"]
        # The previous incarnation's objects may still be collected: ours come anyway.
        try:
            wait_for(lambda u=uid: owned_set_exists(cluster, ns, u), 60, f"cycle {cycle}: objects")
        except AssertionError as error:
            raise AssertionError(f"{error}{what_the_operator_saw(cluster, ns, 'cycle')}") from None
        cluster.ok("delete", "wc", "cycle", "-n", ns, "--timeout=60s")
    cycles_s = time.monotonic() - started
    wait_for(lambda: not leftovers(cluster, ns), 60, "nothing owned left after the cycles")
    orphans = [
        p["metadata"]["name"]
        for p in cluster.get("pods", "-n", ns)["items"]
        if not p["metadata"].get("ownerReferences")
    ]
    assert not orphans
    figures(
        "create-delete-cycles",
        cycles=CYCLES,
        cycles_s=round(cycles_s, 1),
        all_gone_after_s=round(time.monotonic() - started - cycles_s, 1),
    )
