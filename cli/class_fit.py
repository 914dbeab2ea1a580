"""`workerlab class add`: does the class fit on the cluster? Each learner's quota is a promise of
requests (CPU, memory) and pods; when every learner works at once the scheduler has to keep all
of those promises at once. This compares the class's total with what the nodes have left after
everything else already running there, and says what would not fit. Pure: the caller reads the
nodes and the pods (`workerlab.cli.classroom`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

from workerlab.cli.class_quantities import parse_quantity

# (resource as the nodes state it, the quota names that promise it: the first one present wins)
PROMISED = (
    ("cpu", ("requests.cpu", "cpu")),
    ("memory", ("requests.memory", "memory")),
    ("pods", ("pods",)),
)
TERMINATED = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Shortfall:
    resource: str
    quota_name: str
    per_learner: Fraction
    learners: int
    free: Fraction
    allocatable: Fraction

    def describe(self) -> str:
        need = self.per_learner * self.learners
        return (
            f"{self.learners} learners x {self.quota_name} {show(self.resource, self.per_learner)}"
            f" = {show(self.resource, need)}, but the nodes have {show(self.resource, self.free)}"
            f" {self.resource} left of {show(self.resource, self.allocatable)} allocatable"
        )


def show(resource: str, amount: Fraction) -> str:
    if resource == "memory":
        return f"{float(amount / 2**30):.1f}Gi"
    if resource == "cpu" and amount.denominator != 1:
        return f"{float(amount * 1000):.0f}m"
    return str(int(amount)) if amount.denominator == 1 else f"{float(amount):.2f}"


def _quantity(value: object) -> Fraction:
    try:
        return parse_quantity(str(value))
    except ValueError:
        return Fraction(0)


def allocatable(nodes: Iterable[dict]) -> dict[str, Fraction]:
    """Sum of the schedulable nodes' `status.allocatable` (cordoned nodes take no new pods)."""
    total = {resource: Fraction(0) for resource, _ in PROMISED}
    for node in nodes:
        if (node.get("spec") or {}).get("unschedulable"):
            continue
        found = (node.get("status") or {}).get("allocatable") or {}
        for resource in total:
            total[resource] += _quantity(found.get(resource, 0))
    return total


def requested(pods: Iterable[dict], skip_namespaces: Iterable[str]) -> dict[str, Fraction]:
    """What the running pods outside `skip_namespaces` already take: their containers' requests
    (a pod counts once). The learners' own pods are left out: the quota already covers them."""
    skip = set(skip_namespaces)
    total = {resource: Fraction(0) for resource, _ in PROMISED}
    for pod in pods:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        if meta.get("namespace") in skip or (pod.get("status") or {}).get("phase") in TERMINATED:
            continue
        if not spec.get("nodeName"):
            continue  # pending: it takes nothing yet
        total["pods"] += 1
        for container in spec.get("containers") or []:
            requests = (container.get("resources") or {}).get("requests") or {}
            for resource in ("cpu", "memory"):
                total[resource] += _quantity(requests.get(resource, 0))
    return total


def shortfalls(
    quota: Mapping[str, str],
    learners: int,
    nodes_allocatable: Mapping[str, Fraction],
    others_requested: Mapping[str, Fraction],
) -> list[Shortfall]:
    """Each resource the class's quotas promise more of than the nodes have left."""
    found = []
    for resource, names in PROMISED:
        name = next((n for n in names if n in quota), None)
        if name is None or learners == 0:
            continue
        per_learner = _quantity(quota[name])
        free = max(Fraction(0), nodes_allocatable[resource] - others_requested[resource])
        if per_learner * learners > free:
            found.append(
                Shortfall(resource, name, per_learner, learners, free, nodes_allocatable[resource])
            )
    return found
