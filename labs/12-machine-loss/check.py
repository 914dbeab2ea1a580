"""Lab 12: a machine dies with the active master and a worker pod on it.

Evidence, all since `workerlab lab reset 12`: the operator's NodeLost Warning and the ReplacedPod
Event naming the lost node on wc/demo (the worker pod was healed by the operator, not the node
controller); an operator container that exited 3 (the old master woke without the Lease and stood
down); an operator pod made by the Deployment after the active master was deleted, and a Lease
taken after the node loss (the second hand-over); demo converged again, its lost node back and no
pod twice.
"""

from __future__ import annotations

from workerlab.api.objects import created_at, epoch, event_time
from workerlab.api.resource import (
    LABEL_NAME,
    OPERATOR_DEPLOYMENT,
    OPERATOR_EXIT_LOST_LEASE,
    OPERATOR_LEASE,
    OPERATOR_NAMESPACE,
    Reason,
)
from workerlab.common.errors import WorkerlabError
from workerlab.common.kube import Kube
from workerlab.common.nodes import pod_nodes
from workerlab.common.wcstate import converged, wait_converged
from workerlab.labs.checking import CheckContext, Checker, Item, item, listing
from workerlab.labs.starting_state import CONVERGE_TIMEOUT_S, DEMO, reset_demo

MIN_WORKERS = 2
LEASES = "leases.coordination.k8s.io"


def _system(kube: Kube) -> Kube:
    return Kube(kube.context, OPERATOR_NAMESPACE, kube.kubectl)


def _stood_down(pod: dict) -> list[float]:
    """When this operator pod's container last exited 3 (lost the Lease), if it did."""
    times = []
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        ended = ((status.get("lastState") or {}).get("terminated")) or {}
        finished = epoch(ended.get("finishedAt"))
        if ended.get("exitCode") == OPERATOR_EXIT_LOST_LEASE and finished is not None:
            times.append(finished)
    return times


def gather(ctx: CheckContext) -> dict:
    kube = ctx.kube
    system = _system(kube)
    operator_pods = system.list("pods", f"{LABEL_NAME}={OPERATOR_DEPLOYMENT}")
    lease = system.get(LEASES, OPERATOR_LEASE) or {}
    return {
        "started_at": ctx.started_at,
        "demo": kube.worker_cluster(DEMO),
        "pods": kube.pods_of(DEMO),
        "events": kube.events_for("WorkerCluster", DEMO),
        "operator_created": [created_at(p) for p in operator_pods],
        "stood_down": [t for p in operator_pods for t in _stood_down(p)],
        "lease_acquired": epoch((lease.get("spec") or {}).get("acquireTime")),
        "lease_holder": (lease.get("spec") or {}).get("holderIdentity"),
    }


def _since(events: list[dict], started: float, reason: str, text: str = "") -> list[dict]:
    return [
        e
        for e in events
        if e.get("reason") == reason
        and text in str(e.get("message", ""))
        and (epoch(event_time(e)) or 0) >= started
    ]


def evaluate(facts: dict) -> list[Item]:
    started = facts["started_at"]
    if started is None:
        return [
            item(
                "the lab was started with `workerlab lab reset 12`",
                False,
                "",
                "run: workerlab lab reset 12 (it records when the drill began), then the steps",
            )
        ]
    events = facts["events"]
    lost = _since(events, started, Reason.NODE_LOST)
    replaced = _since(events, started, Reason.REPLACED_POD, "of lost node")
    items = [
        item(
            "a machine with a demo pod on it stopped, and the operator found it lost",
            lost,
            lost[-1]["message"] if lost else "no NodeLost Event on wc/demo since the reset",
            "docker pause the node of the active master (see the steps) and wait 60 s: the "
            "operator waits spec.nodeLossTolerationSeconds (30 s) first",
        ),
        item(
            "the operator, not the node controller, replaced the pod of the lost machine",
            replaced,
            replaced[-1]["message"] if replaced else "no ReplacedPod Event names a lost node",
            "the demo pod must be on the stopped node: kubectl -n workerlab get pods -o wide",
        ),
    ]
    down = [t for t in facts["stood_down"] if t >= started]
    items.append(
        item(
            "the old master, woken without the Lease, stood down instead of acting (exit 3)",
            down,
            f"an operator container exited 3 {min(down) - started:.0f}s into the drill"
            if down
            else "no operator container exited 3 since the reset",
            "docker unpause the node, then give its kubelet ~30 s: "
            "kubectl -n workerlab-system get pods -o wide",
        ),
    )
    lost_at = min((epoch(event_time(e)) or 0) for e in lost) if lost else None
    fresh = [t for t in facts["operator_created"] if t and t >= started]
    acquired = facts["lease_acquired"]
    handed_over = bool(fresh) and lost_at is not None and (acquired or 0) > lost_at
    items.append(
        item(
            "the active master was deleted and a standby took the Lease",
            handed_over,
            f"the Lease is held by {facts['lease_holder']}, taken "
            f"{(acquired or started) - started:.0f}s into the drill"
            if handed_over
            else "no operator pod was replaced after the machine was found lost",
            "delete the pod the Lease names, after the node is back (see the steps)",
        )
    )
    demo = facts["demo"]
    done, why = converged(demo)
    still_lost = (demo.get("status") or {}).get("lostNodes") or []
    live = [p for p in facts["pods"] if not (p.get("metadata") or {}).get("deletionTimestamp")]
    replicas = (demo.get("spec") or {}).get("replicas")
    items.append(
        item(
            "demo is whole again: converged, no node lost, no pod twice",
            done and not still_lost and len(live) == replicas,
            f"{why}; {len(live)} live pods of {replicas}; lost nodes: "
            f"{listing(n.get('name') for n in still_lost)}",
            "docker unpause the node, then: workerlab status demo --wait 120",
        )
    )
    return items


def reset(ctx: CheckContext) -> list[str]:
    kube = ctx.kube
    found, unready = pod_nodes(kube)
    if len(found) < MIN_WORKERS:
        raise WorkerlabError(
            f"lab 12 stops a machine: it needs {MIN_WORKERS} nodes or more that run pods, this "
            f"cluster has {len(found)} ({listing(found)}). On the lab's kind cluster: make down, "
            "then make up NODES=3"
        )
    if unready:
        raise WorkerlabError(
            f"node {listing(unready)} is not Ready (still paused by an earlier drill?): docker "
            "unpause it, wait until `kubectl get nodes` shows it Ready, then reset again"
        )
    deployment = _system(kube).get("deployment", OPERATOR_DEPLOYMENT) or {}
    replicas = (deployment.get("spec") or {}).get("replicas") or 0
    lease = _system(kube).get(LEASES, OPERATOR_LEASE)
    if replicas < 2 or lease is None:
        raise WorkerlabError(
            "lab 12 needs the operator with a standby: 2 replicas and leader election (make up "
            "does it on a cluster with 2 workers; with Helm: --set operator.leaderElection=true "
            f"--set operator.replicas=2); found {replicas} replica(s), "
            f"{'a' if lease else 'no'} Lease {OPERATOR_LEASE}"
        )
    said = reset_demo(kube)
    return [said, spread_demo(kube)]


def spread_demo(kube: Kube) -> str:
    """demo's pods on distinct workers, so that any machine stopped holds one: after an earlier
    drill both may sit on the surviving node (pods are placed once, when scheduled)."""
    pods = [p for p in kube.pods_of(DEMO) if not (p.get("metadata") or {}).get("deletionTimestamp")]
    seen: set[str] = set()
    crowded = []
    for pod in sorted(pods, key=lambda p: created_at(p) or 0):
        node = str((pod.get("spec") or {}).get("nodeName"))
        if node in seen:
            crowded.append(pod["metadata"]["name"])
        seen.add(node)
    if not crowded:
        return f"demo's pods run on {listing(sorted(seen))}, one each"
    kube.run("delete", "pod", *crowded, "--wait=false")
    wait_converged(kube, DEMO, CONVERGE_TIMEOUT_S)
    return f"deleted {listing(crowded)} so that the operator places demo's pods one per worker"


CHECKER = Checker(gather, evaluate, reset)
