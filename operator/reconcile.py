"""The pure core: from (WorkerCluster, observed pods, now) to the actions and status. No I/O.

The algorithm is the Deployment controller's rolling update, done on pods directly instead of
on ReplicaSets:

1. Pods this cluster does not control, and pods already terminating, are never touched; the
   latter are not counted either (they are draining, as in a Deployment).
2. Failed/Succeeded pods are replaced, but with an exponential backoff persisted in status, so a
   pod that dies at once cannot make the operator delete and recreate in a tight loop.
3. Outdated pods that are not Ready serve nobody: they go at once.
4. Current pods beyond `replicas` go, unready first, then newest first (scale-down).
5. Outdated Ready pods go only while Ready pods stay >= replicas - maxUnavailable.
6. Missing current pods are created while pods stay <= replicas + maxSurge.

Pods on a lost node (silent past `spec.nodeLossTolerationSeconds`, nodeloss.py) are deleted at
once with no grace period (that kubelet cannot confirm a graceful one) and are not counted, so
rule 6 replaces them; new pods keep off lost nodes, which the scheduler still thinks healthy.

Containers that crash-loop are restarted by the kubelet (with its own backoff); the operator
does not delete those pods, it reports them in the Degraded condition.

The process count and CPU/memory are not in the template hash: current pods that differ are
changed in place (`ChangeInPlace`, inplace.py). A pod that cannot take its change in place is
counted as outdated, so rules 3, 5 and 6 replace it as a rolling update does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from workerlab.api.objects import format_time
from workerlab.api.resource import Reason
from workerlab.operator.inplace import ChangeInPlace, change_for, describe, not_in_place
from workerlab.operator.model import FailureBackoff, ObservedPod, WorkerCluster
from workerlab.operator.nodeloss import NodeHealth
from workerlab.operator.status import Counts, Refusal, build_status
from workerlab.operator.templates import desired_resources, roll_reason, template_hash

BACKOFF_BASE_SECONDS = 10.0
BACKOFF_CAP_SECONDS = 300.0


@dataclass(frozen=True)
class CreatePod:
    template_hash: str
    reason: str  # ScaleUp | Replace | RollingUpdate
    avoid_nodes: tuple[str, ...] = ()  # lost nodes, still schedulable as far as the scheduler knows
    replaces: DeletePod | None = None  # the pod of a lost node this one stands in for


@dataclass(frozen=True)
class DeletePod:
    name: str
    uid: str
    ready: bool
    reason: str  # ScaleDown | RollingUpdate | ReplaceFailed | NodeLost
    node: str | None = None
    force: bool = False  # no grace period: the pod's kubelet is not there to honour one


Action = CreatePod | DeletePod | ChangeInPlace


@dataclass(frozen=True)
class Plan:
    actions: list[Action]
    status: dict[str, Any]
    # When the core wants to be asked again even if nothing changes (a backoff expiring).
    requeue_after: float | None = None
    # Situations worth an Event that are not actions (e.g. a foreign pod was ignored).
    warnings: list[tuple[str, str]] = field(default_factory=list)
    # Normal Events, each posted once by this plan (not deduplicated like the warnings).
    notes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def creates(self) -> list[CreatePod]:
        return [a for a in self.actions if isinstance(a, CreatePod)]

    @property
    def deletes(self) -> list[DeletePod]:
        return [a for a in self.actions if isinstance(a, DeletePod)]

    @property
    def in_place(self) -> list[ChangeInPlace]:
        return [a for a in self.actions if isinstance(a, ChangeInPlace)]


def backoff_delay(consecutive_failures: int) -> float:
    """0 for the first failure, then 10 s, 20 s, 40 s... capped at 5 minutes."""
    if consecutive_failures <= 0:
        return 0.0
    return min(BACKOFF_BASE_SECONDS * 2.0 ** (consecutive_failures - 1), BACKOFF_CAP_SECONDS)


@dataclass(frozen=True)
class HeldWrite:
    """A write the API server refused, held back until `retry_at` (the failed-pod backoff's
    10 s, 20 s, 40 s ... 5 min), unless what it depends on changed (`context`: the desired
    object, the spec's generation, the pods a quota counts), which is worth one try at once.
    The shell keeps one per WorkerCluster and kind; the decisions are here."""

    refusal: Refusal
    context: str
    failures: int
    attempted: datetime

    @property
    def retry_at(self) -> datetime:
        return self.attempted + timedelta(seconds=backoff_delay(self.failures))

    def holds(self, context: str, now: datetime) -> bool:
        """Whether the write waits (True) or is tried again now (False)."""
        return context == self.context and now < self.retry_at

    def wait(self, now: datetime) -> float:
        return max(0.0, (self.retry_at - now).total_seconds())


def held_after(
    previous: HeldWrite | None, refusal: Refusal, context: str, now: datetime
) -> HeldWrite:
    """The hold after a refusal: the backoff grows while the cause stays the same (even if the
    spec changed meanwhile: each change gets one try, not a reset), restarts for a new cause."""
    same = previous is not None and previous.refusal.cause == refusal.cause
    failures = previous.failures + 1 if previous is not None and same else 1
    return HeldWrite(refusal, context, failures, now)


def _newest_first(pods: list[ObservedPod]) -> list[ObservedPod]:
    return sorted(pods, key=lambda p: (p.created.timestamp() if p.created else 0.0, p.name))[::-1]


def _scale_down_order(pods: list[ObservedPod]) -> list[ObservedPod]:
    """Unready before Ready; within each, newest first (they have served the least)."""
    newest = _newest_first(pods)
    return [p for p in newest if not p.ready] + [p for p in newest if p.ready]


def lost_nodes_status(
    cluster: WorkerCluster, stranded: list[ObservedPod], lost: dict[str, datetime]
) -> list[dict[str, str]]:
    """status.lostNodes: the lost nodes this cluster had pods on, for as long as they stay lost
    (the pods are gone after the first reconcile; the previous status remembers the node)."""
    before = {str(entry.get("name")) for entry in cluster.status.get("lostNodes") or []}
    names = {p.node for p in stranded if p.node} | (before & set(lost))
    return [{"name": n, "lastHeartbeatTime": format_time(lost[n])} for n in sorted(names)]


def plan(
    cluster: WorkerCluster,
    pods: list[ObservedPod],
    now: datetime,
    nodes: NodeHealth | None = None,
) -> Plan:
    spec = cluster.spec
    desired = spec.replicas
    current_hash = template_hash(cluster)
    surge, unavailable = spec.update_strategy.bounds(desired)
    nodes = nodes or NodeHealth()
    tolerance = float(spec.node_loss_toleration_seconds)
    lost = nodes.lost(tolerance, now)

    mine = [p for p in pods if p.owned_by(cluster)]
    stranded = [p for p in mine if p.node in lost]
    owned = [p for p in mine if p.node not in lost]
    foreign = [p for p in pods if not p.owned_by(cluster) and not p.terminating]
    live = [p for p in owned if not p.terminating]
    finished = [p for p in live if p.finished]
    active = [p for p in live if not p.finished]
    current = [p for p in active if p.template_hash == current_hash]
    outdated = [p for p in active if p.template_hash != current_hash]
    processes, resources = spec.processes_per_pod, desired_resources(spec)

    backoff = FailureBackoff.from_status(cluster.status)
    warnings: list[tuple[str, str]] = []
    notes: list[tuple[str, str]] = []
    # A current pod that cannot take its change in place is rolled like an outdated one.
    in_place: dict[str, str] = {}
    for pod in list(current):
        if (why := not_in_place(pod, now)) is not None:
            current.remove(pod)
            outdated.append(pod)
            in_place[pod.name] = f"refused: {why}"
            warnings.append(
                (Reason.IN_PLACE_FALLBACK, f"pod {pod.name}: {why}; replacing it (rolling update)")
            )
        elif (change := describe(pod, processes, resources, now)) is not None:
            in_place[pod.name] = change
    # Said once per new template: at the first plan that sees it (the status still names the
    # template before), so a template rolled to again later is said again.
    new_template = cluster.status.get("templateHash") not in (None, current_hash)
    if new_template and outdated and (why := roll_reason(cluster, outdated)) is not None:
        notes.append((Reason.ROLLING_UPDATE, why))
    if foreign:
        names = ", ".join(sorted(p.name for p in foreign)[:5])
        warnings.append(
            (Reason.IGNORED_PODS, f"pods with this cluster's labels but another owner: {names}")
        )

    lost_status = lost_nodes_status(cluster, stranded, lost)
    changing = sum(p.name in in_place for p in current)
    if spec.paused:
        counts = Counts.of(active, current, desired, pods_waiting_backoff=0, in_place=changing)
        status = build_status(
            cluster,
            owned,
            counts,
            now,
            backoff,
            current_hash,
            paused=True,
            lost_nodes=lost_status,
            in_place=in_place,
        )
        return Plan(actions=[], status=status, warnings=warnings)

    # 0. Pods on lost nodes: gone for good, also those already terminating (they never finish).
    lost_deletes = [
        DeletePod(p.name, p.uid, p.ready, "NodeLost", node=p.node, force=True) for p in stranded
    ]
    actions: list[Action] = list(lost_deletes)
    requeue_after = nodes.seconds_until_lost({p.node for p in live if p.node}, tolerance, now)

    # 2. Failed pods: replace once the backoff allows it; until then they hold their slot.
    waiting_failed = 0
    if finished:
        ready_at = (backoff.last_replacement or now) + timedelta(
            seconds=backoff_delay(backoff.consecutive_failures)
        )
        if backoff.last_replacement is None or now >= ready_at:
            actions += [DeletePod(p.name, p.uid, False, "ReplaceFailed") for p in finished]
            backoff = FailureBackoff(backoff.consecutive_failures + 1, now)
        else:
            waiting_failed = len(finished)
            wait = (ready_at - now).total_seconds()
            requeue_after = wait if requeue_after is None else min(requeue_after, wait)

    # 3. Outdated pods that serve nobody.
    actions += [DeletePod(p.name, p.uid, False, "RollingUpdate") for p in outdated if not p.ready]
    outdated_ready = [p for p in outdated if p.ready]

    # 4. Scale-down of current pods.
    kept_current = current
    if len(current) > desired:
        order = _scale_down_order(current)
        surplus = order[: len(current) - desired]
        actions += [DeletePod(p.name, p.uid, p.ready, "ScaleDown") for p in surplus]
        kept_current = order[len(current) - desired :]

    # In place: the current pods keep serving while their arbiter and kubelet take the change.
    actions += [c for p in kept_current if (c := change_for(p, processes, resources)) is not None]

    # 5. Outdated Ready pods, within the availability budget.
    min_available = max(0, desired - unavailable)
    ready_now = sum(p.ready for p in kept_current) + len(outdated_ready)
    budget = max(0, ready_now - min_available)
    retiring = _newest_first(outdated_ready)[:budget]
    actions += [DeletePod(p.name, p.uid, True, "RollingUpdate") for p in retiring]
    kept_outdated = len(outdated_ready) - len(retiring)

    # 6. Create what is missing, within the surge budget.
    missing = desired - len(kept_current) - waiting_failed
    room = desired + surge - len(kept_current) - kept_outdated - waiting_failed
    to_create = max(0, min(missing, room))
    if to_create:
        # The creates stand in for the lost node's serving pods first (for the Events).
        stand_ins: list[DeletePod | None] = [
            d for d, p in zip(lost_deletes, stranded, strict=True) if not p.terminating
        ]
        if outdated:
            reason = "RollingUpdate"
        elif stand_ins:
            reason = "Replace"
        elif cluster.generation != cluster.status.get("observedGeneration") or not current:
            reason = "ScaleUp"
        else:
            reason = "Replace"
        stand_ins += [None] * to_create
        avoid = tuple(sorted(lost))
        actions += [CreatePod(current_hash, reason, avoid, stand_ins[i]) for i in range(to_create)]

    counts = Counts.of(
        active, current, desired, pods_waiting_backoff=waiting_failed, in_place=changing
    )
    converged = counts.converged and not finished
    if converged and backoff.consecutive_failures:
        backoff = FailureBackoff()  # healthy again: the next failure is replaced at once
    status = build_status(
        cluster,
        owned,
        counts,
        now,
        backoff,
        current_hash,
        paused=False,
        pending_actions=len(actions),
        waiting_failed=waiting_failed,
        lost_nodes=lost_status,
        in_place=in_place,
    )
    return Plan(
        actions=actions,
        status=status,
        requeue_after=requeue_after,
        warnings=warnings,
        notes=notes,
    )
