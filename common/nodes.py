"""The cluster's machines as the labs see them: which nodes run worker pods, which are Ready."""

from __future__ import annotations

from workerlab.common.kube import Kube

# The node controller's own taints (node.kubernetes.io/unreachable, ...) say how a node is now,
# not what it is for: a stopped worker is still a worker.
CONDITION_TAINTS = "node.kubernetes.io/"


def runs_pods(node: dict) -> bool:
    """Not tainted NoSchedule by its role (a kind control plane is, when it has workers)."""
    return not any(
        t.get("effect") == "NoSchedule" and not str(t.get("key", "")).startswith(CONDITION_TAINTS)
        for t in (node.get("spec") or {}).get("taints") or []
    )


def ready(node: dict) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_nodes(kube: Kube) -> tuple[list[str], list[str]]:
    """(the nodes that run pods, those of them not Ready now), by name."""
    nodes = [n for n in kube.list("nodes", namespaced=False) if runs_pods(n)]
    names = sorted(n["metadata"]["name"] for n in nodes)
    return names, sorted(n["metadata"]["name"] for n in nodes if not ready(n))
