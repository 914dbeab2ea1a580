"""A tiny in-memory world for exercising the pure core: builders and a step function.

Used by the unit and property tests (and handy in a REPL to watch a rollout step by step).
It is not a fake API server: nothing here is used by the operator itself.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from workerlab.operator.images import FALLBACK_WORKER_IMAGE, WorkerImage
from workerlab.operator.inplace import ChangeInPlace
from workerlab.operator.model import ObservedPod, WorkerCluster, WorkerClusterSpec
from workerlab.operator.reconcile import CreatePod, DeletePod, Plan, plan
from workerlab.operator.templates import desired_resources, template_hash

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
CLUSTER_UID = "uid-demo"
_serial = itertools.count()


def make_cluster(
    status: dict[str, Any] | None = None,
    generation: int = 1,
    default_image: WorkerImage = FALLBACK_WORKER_IMAGE,
    **spec: Any,
) -> WorkerCluster:
    return WorkerCluster(
        name="demo",
        namespace="workerlab",
        uid=CLUSTER_UID,
        generation=generation,
        spec=WorkerClusterSpec.from_dict(spec),
        status=status if status is not None else {"observedGeneration": generation},
        default_image=default_image,
    )


CURRENT = "current"  # sentinel: "the cluster's current template hash"


def make_pod(
    cluster: WorkerCluster | None = None,
    *,
    hash: str | None = CURRENT,
    ready: bool = True,
    age: float = 60.0,
    owner: str | None = CLUSTER_UID,
    now: datetime = T0,
    **fields: Any,
) -> ObservedPod:
    n = next(_serial)
    if hash == CURRENT:
        hash = template_hash(cluster) if cluster else None
    # As the cluster's template makes it (told its process count, sized), else as told nothing.
    processes = cluster.spec.processes_per_pod if cluster else 2
    base = ObservedPod(
        name=f"demo-{n:05d}",
        uid=f"pod-uid-{n}",
        template_hash=hash,
        controller_uid=owner,
        created=now - timedelta(seconds=age),
        phase="Running",
        ready=ready,
        processes_alive=processes if ready else None,
        processes_told=processes if cluster else None,
        resources=desired_resources(cluster.spec) if cluster else {},
    )
    return replace(base, **fields)


@dataclass
class World:
    """Pods and a clock. Deleted pods linger one step as terminating, created pods become Ready
    after `ready_after_steps` steps (never, if None)."""

    cluster: WorkerCluster
    pods: list[ObservedPod]
    now: datetime = T0
    step_seconds: float = 5.0
    ready_after_steps: int | None = 1
    _ages: dict[str, int] = field(default_factory=dict)

    def observe(self) -> Plan:
        return plan(self.cluster, list(self.pods), self.now)

    def apply(self, result: Plan) -> None:
        deleted = {a.uid for a in result.actions if isinstance(a, DeletePod)}
        survivors = []
        for p in self.pods:
            if p.terminating:
                continue  # finished draining during this step
            if p.uid in deleted:
                survivors.append(replace(p, terminating=True, ready=False))
            else:
                survivors.append(p)
        changes = {a.uid: a for a in result.actions if isinstance(a, ChangeInPlace)}
        survivors = [self._changed(p, changes[p.uid]) if p.uid in changes else p for p in survivors]
        for action in result.actions:
            if isinstance(action, CreatePod):
                survivors.append(
                    make_pod(
                        self.cluster,
                        hash=action.template_hash,
                        ready=False,
                        age=0,
                        now=self.now,
                        phase="Pending",
                    )
                )
        self.pods = survivors
        self.cluster = replace(self.cluster, status=result.status)
        self.now += timedelta(seconds=self.step_seconds)
        self._become_ready()

    @staticmethod
    def _changed(pod: ObservedPod, change: ChangeInPlace) -> ObservedPod:
        """The arbiter and the kubelet take a change in place within the step."""
        if change.processes is not None:
            told = change.processes[1]
            pod = replace(pod, processes_told=told, processes_alive=told if pod.ready else None)
        if change.resources is not None:
            pod = replace(pod, resources=change.resources[1])
        return pod

    def _become_ready(self) -> None:
        updated = []
        for p in self.pods:
            self._ages[p.uid] = self._ages.get(p.uid, 0) + 1
            ripe = (
                self.ready_after_steps is not None and self._ages[p.uid] >= self.ready_after_steps
            )
            if ripe and not p.ready and not p.terminating and not p.finished and not p.stuck:
                p = replace(p, ready=True, phase="Running", processes_alive=p.processes_told or 2)
            updated.append(p)
        self.pods = updated

    def step(self) -> Plan:
        result = self.observe()
        self.apply(result)
        return result
