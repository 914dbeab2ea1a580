"""The thin shell around the pure core: read the world, call plan(), apply what it says.

One reconcile of one WorkerCluster reads the whole current state (the object and its pods; in
production from watch-fed caches, `cache.CachedKube`), so it is level-triggered: it does the
right thing whatever happened before, after an operator restart, a lost event or a failed write.
Writes happen only when something differs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from workerlab.api.objects import format_time
from workerlab.api.resource import ANNOTATION_CHANGED_AT, ANNOTATION_PROCESSES, Reason
from workerlab.operator import events
from workerlab.operator.images import FALLBACK_WORKER_IMAGE, WorkerImage
from workerlab.operator.inplace import (
    IN_PLACE_DEADLINE_S,
    STALL_WINDOW_S,
    ChangeInPlace,
    refusal_patch,
    stalled,
)
from workerlab.operator.kube import ApiError
from workerlab.operator.metrics import Metrics
from workerlab.operator.model import ObservedPod, WorkerCluster
from workerlab.operator.nodeloss import NodeHealth
from workerlab.operator.owned import Owned, OwnedClient
from workerlab.operator.processes import ProcessProbe
from workerlab.operator.reconcile import CreatePod, DeletePod, HeldWrite, Plan, plan
from workerlab.operator.recorder import EventSink, Recorder
from workerlab.operator.status import status_patch, with_refusals
from workerlab.operator.templates import CONTAINER_NAME, build_pod
from workerlab.operator.writes import Writes

logger = logging.getLogger("workerlab.operator")


class KubeClient(OwnedClient, EventSink, Protocol):
    """What the controller needs from the API server: `cache.CachedKube` (reads from watch-fed
    caches, writes through `kube.Kube`) in production, `kube.Kube` itself, or a recording double
    in the unit tests (all checked against this by the type checker). Writes may answer the
    object written; the controller does not need it. The owned objects' calls: OwnedClient; the
    Events': the recorder's EventSink."""

    async def get_cluster(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]: ...
    async def create_pod(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...
    async def delete_pod(
        self, namespace: str, name: str, uid: str, grace_seconds: int | None = None
    ) -> bool: ...
    async def patch_cluster_status(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> Any: ...
    async def patch_pod(
        self, namespace: str, name: str, uid: str, patch: dict[str, Any]
    ) -> dict[str, Any]: ...
    async def resize_pod(
        self, namespace: str, name: str, container: str, resources: dict[str, Any]
    ) -> dict[str, Any]: ...


Key = tuple[str, str]  # (namespace, name)


IN_PLACE_RECHECK_S = 5.0  # while a pod takes a change in place: to see its deadline pass


def _now() -> datetime:
    return datetime.now(UTC)


def _pod_context(cluster: WorkerCluster, live: int) -> str:
    """What a pod create depends on: the spec and the pods a quota counts."""
    return f"generation={cluster.generation} pods={live}"


@dataclass
class Controller:
    kube: KubeClient
    probe: ProcessProbe
    metrics: Metrics
    poll_seconds: float = 10.0
    resync_seconds: float = 300.0
    clock: Callable[[], datetime] = _now
    # The operator's default worker image (--worker-image), for WorkerClusters without spec.image.
    default_image: WorkerImage = FALLBACK_WORKER_IMAGE
    events_in_background: bool = False  # the operator: True (tests read Events at once)
    # The nodes' last heartbeats (heartbeats.Heartbeats.health); none known: no node is lost.
    node_health: Callable[[], NodeHealth] = NodeHealth
    recorder: Recorder = field(init=False)
    # Per WorkerCluster, the writes the API server refused, by kind (writes.Writes), and the uid
    # of the incarnation they were refused to: one deleted and created again under the same name
    # (its DELETED event folded into the ADDED one in the work queue) starts afresh, instead of
    # inheriting its predecessor's backoff.
    _held: dict[Key, tuple[str, dict[str, HeldWrite]]] = field(default_factory=dict)
    # Pods seen running their count since their last change in place (uid -> that change).
    _reached: dict[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.recorder = Recorder(self.kube, background=self.events_in_background)

    async def reconcile(self, key: Key) -> float | None:
        started = time.perf_counter()
        try:
            again, result = await self._reconcile(key)
        except Exception as error:
            self.metrics.reconcile_total.labels(result="error").inc()
            self.metrics.reconcile_errors.inc()
            logger.warning("reconcile failed: namespace=%s name=%s error=%s", *key, error)
            raise
        finally:
            self.metrics.reconcile_time.observe(time.perf_counter() - started)
        if result == "error":  # a refused write: stated in status, retried with backoff
            self.metrics.reconcile_errors.inc()
        # As controller-runtime counts: the periodic resync and process poll are not requeues;
        # only the core asking to be called again (a backoff expiring) is.
        self.metrics.reconcile_total.labels(result=result).inc()
        return again

    def _held_for(self, key: Key, uid: str) -> dict[str, HeldWrite]:
        held = self._held.get(key)
        if held is None or held[0] != uid:
            if held is not None:  # a new incarnation: what was said of the old one is news again
                self.recorder.forget(key)
            held = self._held[key] = (uid, {})
        return held[1]

    def forget(self, key: Key) -> None:
        self.recorder.forget(key)
        self._held.pop(key, None)
        self.probe.forget(*key)

    async def _reconcile(self, key: Key) -> tuple[float | None, str]:
        """(seconds until the next look or None, the result as the metric counts it)."""
        namespace, name = key
        body = await self.kube.get_cluster(namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            # Garbage collection removes what it owned; nothing to do, nothing to remember.
            self.forget(key)
            return None, "success"
        cluster = WorkerCluster.from_body(body, self.default_image)
        raw_pods = await self.kube.list_pods(namespace, cluster.selector_string)
        now = self.clock()
        # Process counts only feed the status, never the pod actions: act on the pods first,
        # then read the processes (their proxy GETs would otherwise queue ahead of the deletes
        # and creates in the client's thread pool), and only then compute the status.
        observed = [ObservedPod.from_pod(p) for p in raw_pods]
        nodes = self.node_health()
        result = plan(cluster, observed, now, nodes)
        writes = Writes(self._held_for(key, cluster.uid), now)
        owned = Owned(self.kube, self.recorder, writes, cluster, body, now)
        # A cached WorkerCluster may outlive its deletion (a DELETED event late, or missed while
        # the operator was paused): what is created for it would only feed garbage collection.
        if result.creates and not await owned.owner_still_exists():
            self.forget(key)
            return None, "success"
        live = sum(1 for p in observed if p.owned_by(cluster) and not p.terminating)
        await self._apply(cluster, body, result, live, writes, now)
        pods = await self._observe(cluster, raw_pods)
        await self._refuse_stalled(cluster, pods, now)
        for seen in self.probe.take_replacements(namespace, name):
            # Stamped when the process died (the arbiter's record), not when this poll saw it:
            # the Event says when the heal happened, as the other heals' Events do.
            died = seen.replacement.dead.exited_at
            at = datetime.fromtimestamp(died, UTC) if died else now
            await self.recorder.post(body, events.process_replaced(seen), at)
        result = replace(result, status=plan(cluster, pods, now, nodes).status)
        await owned.ensure_all()
        if owned.owner_exists is False:  # found gone before a create: nothing to state or hold
            self.forget(key)
            return None, "success"
        retry_in = writes.finish()
        # A refused write is said in status (Degraded, the API server's message; its transition
        # posts one Warning per change of cause) and retried with backoff, never in a tight loop.
        status = with_refusals(cluster, result.status, writes.refusals, now)
        await self._write_status(cluster, body, replace(result, status=status), now)

        refused = writes.refusals[0].reason if writes.refusals else "-"
        logger.info(
            "reconciled: namespace=%s name=%s phase=%s ready=%s/%s processes=%s actions=%d "
            "refused=%s",
            namespace,
            name,
            status["phase"],
            status["readyReplicas"],
            cluster.spec.replicas,
            status["readyProcesses"],
            len(result.actions),
            refused,
        )
        again = self.resync_seconds
        if status["readyReplicas"] and not self.probe.polls_itself:
            # Keep process counts fresh: come back when one of the serving pods is due to be
            # read again (every poll for pods that answer, less often for pods that do not).
            serving = [p.uid for p in pods if p.ready and not p.terminating and p.owned_by(cluster)]
            again = min(again, max(self.poll_seconds, self.probe.due_in(serving)))
        if retry_in is not None:
            again = min(again, retry_in + 0.1)
        if result.requeue_after is not None:
            again = min(again, result.requeue_after + 0.1)
        if any("inPlace" in p for p in status["pods"]):
            again = min(again, IN_PLACE_RECHECK_S)  # its deadline passes with no event
        if writes.refusals:
            return again, "error"
        return again, "requeue_after" if result.requeue_after is not None else "success"

    async def _observe(
        self, cluster: WorkerCluster, raw: list[dict[str, Any]]
    ) -> list[ObservedPod]:
        bare = [ObservedPod.from_pod(p) for p in raw]
        serving = [
            (p.name, p.uid) for p in bare if p.ready and not p.terminating and p.owned_by(cluster)
        ]
        alive = await self.probe.alive(
            cluster.namespace, serving, cluster.spec.port, owner=cluster.name
        )
        return [ObservedPod.from_pod(p, alive.get(b.uid)) for p, b in zip(raw, bare, strict=True)]

    # -- pods ----------------------------------------------------------------------------------

    async def _apply(
        self,
        cluster: WorkerCluster,
        body: dict[str, Any],
        result: Plan,
        live: int,
        writes: Writes,
        now: datetime,
    ) -> None:
        """Carry out the plan (`live`: the owned pods not terminating); a pod creation the API
        server refuses (quota, admission, an invalid podTemplate) is held (`writes`)."""
        # Deletions are independent of each other: issue them together, as the ReplicaSet
        # controller does, so scaling 10 -> 2 waits for 8 round trips at once, not in a row.
        await asyncio.gather(*(self._delete_pod(cluster, body, a, now) for a in result.deletes))
        live -= len(result.deletes)
        await asyncio.gather(
            *(self._change_in_place(cluster, body, a, now) for a in result.in_place)
        )
        created = 0
        if result.creates and writes.may("Pod", _pod_context(cluster, live)):
            created = await self._create_pods(cluster, body, result, live, writes, now)
        if (scaled := events.scaled(result, cluster.spec.replicas, created)) is not None:
            await self.recorder.post(body, scaled, now)
        for reason, message in result.warnings:
            await self.recorder.say_once(body, "Warning", reason, message, now)
        for reason, message in result.notes:
            await self.recorder.post(body, events.Event("Normal", reason, message), now)

    async def _create_pods(
        self,
        cluster: WorkerCluster,
        body: dict[str, Any],
        result: Plan,
        live: int,
        writes: Writes,
        now: datetime,
    ) -> int:
        """Create the plan's pods; how many the API server accepted."""
        # Creations go in slow-start batches of 1, 2, 4, ... as the ReplicaSet controller's do:
        # 5 pods wait for 3 round trips, not 5, and a refused first pod stops the rest (the next
        # would be refused the same way).
        replacing = events.replacing_failed(result)
        creates, batch, before = list(result.creates), 1, live
        while creates:
            now_batch, creates = creates[:batch], creates[batch:]
            batch *= 2
            outcomes = await asyncio.gather(
                *(self._create_pod(cluster, body, a, replacing, now) for a in now_batch),
                return_exceptions=True,
            )
            errors: list[ApiError] = []
            for outcome in outcomes:
                if isinstance(outcome, ApiError):
                    errors.append(outcome)
                elif isinstance(outcome, BaseException):
                    raise outcome
            live += len(outcomes) - len(errors)
            # Held with the pods there are now: the next reconcile counts the same, unless one
            # of them goes (room for a new one: worth a try at once).
            context = _pod_context(cluster, live)
            for error in errors:
                if not writes.refused("Pod", "create", "", error, context):
                    raise error  # transient: retried by the work queue as any error
            if errors:
                return live - before
        writes.done("Pod")
        return live - before

    async def _change_in_place(
        self, cluster: WorkerCluster, body: dict[str, Any], action: ChangeInPlace, now: datetime
    ) -> None:
        """Resize first, then tell the count: a refused resize leaves the pod as it was, marked
        refused, and the next plan rolls it."""
        namespace, name = cluster.namespace, action.name
        annotations = {ANNOTATION_CHANGED_AT: format_time(now)}
        if action.processes is not None:
            annotations[ANNOTATION_PROCESSES] = str(action.processes[1])
        try:
            if action.resources is not None:
                await self.kube.resize_pod(namespace, name, CONTAINER_NAME, action.resources[1])
            await self.kube.patch_pod(
                namespace, name, action.uid, {"metadata": {"annotations": annotations}}
            )
        except ApiError as error:
            if error.status == 409:
                return  # another pod by that name now: the next reconcile sees it
            if error.status not in (400, 403, 404, 422):
                raise  # transient: retried by the work queue
            # Refused (an older API server, RBAC, validation): roll this pod instead.
            why = f"the API server refused the change ({error.status}): {error.message[:200]}"
            await self._refuse(namespace, name, action.uid, why)
            return
        self.probe.watch_closely(action.uid, IN_PLACE_DEADLINE_S)
        await self.recorder.post(body, events.changed_in_place(action), now)

    async def _refuse_stalled(
        self, cluster: WorkerCluster, pods: list[ObservedPod], now: datetime
    ) -> None:
        """Pods told a count long ago that still run another: marked, so the next plan rolls
        them (counts are known only here, after the plan's actions)."""
        wanted = cluster.spec.processes_per_pod
        for pod in pods:
            if not pod.owned_by(cluster) or pod.terminating or pod.in_place_refused:
                continue
            if pod.changed_at is not None and pod.processes_alive == wanted:
                self._reached[pod.uid] = pod.changed_at
            elif self._reached.get(pod.uid) == pod.changed_at:
                continue  # it ran the count since its change: a process re-forking now
            elif (why := stalled(pod, wanted, now)) is not None:
                await self._refuse(cluster.namespace, pod.name, pod.uid, why)
        horizon = now - timedelta(seconds=IN_PLACE_DEADLINE_S + STALL_WINDOW_S)
        self._reached = {u: at for u, at in self._reached.items() if at > horizon}

    async def _refuse(self, namespace: str, name: str, uid: str, why: str) -> None:
        logger.warning("in place refused: namespace=%s pod=%s: %s", namespace, name, why)
        try:
            await self.kube.patch_pod(namespace, name, uid, refusal_patch(why))
        except ApiError as error:
            if error.status not in (404, 409):  # gone: nothing to roll
                raise

    async def _delete_pod(
        self, cluster: WorkerCluster, body: dict[str, Any], action: DeletePod, now: datetime
    ) -> None:
        grace = 0 if action.force else None
        if await self.kube.delete_pod(cluster.namespace, action.name, action.uid, grace):
            self.metrics.pods_deleted.labels(reason=action.reason).inc()
            await self.recorder.post(body, events.pod_deleted(action), now)

    async def _create_pod(
        self,
        cluster: WorkerCluster,
        body: dict[str, Any],
        action: CreatePod,
        replacing: bool,
        now: datetime,
    ) -> None:
        pod = build_pod(cluster, action.avoid_nodes)
        created = await self.kube.create_pod(cluster.namespace, pod)
        self.metrics.pods_created.labels(reason=action.reason).inc()
        event = events.pod_created(action, created["metadata"]["name"], replacing)
        if event.reason == Reason.REPLACED_POD:
            self.metrics.pods_replaced.inc()
        await self.recorder.post(body, event, now)

    # -- status and events ---------------------------------------------------------------------

    async def _write_status(
        self, cluster: WorkerCluster, body: dict[str, Any], result: Plan, now: datetime
    ) -> None:
        patch = status_patch(cluster.status, result.status)
        if patch is None:
            return  # nothing changed: no write, so no watch event, so no hot loop
        try:
            await self.kube.patch_cluster_status(cluster.namespace, cluster.name, patch)
        except ApiError as error:
            if error.status == 404:
                return  # deleted meanwhile
            raise
        self.metrics.status_writes.inc()
        await self._transition_events(body, cluster.status, result.status, now)

    async def _transition_events(
        self, body: dict[str, Any], old: dict[str, Any], new: dict[str, Any], now: datetime
    ) -> None:
        for event in events.transitions(old, new):
            await self.recorder.post(body, event, now)

    async def drain_events(self) -> None:
        """Wait for the Events posted in the background (tests, shutdown)."""
        await self.recorder.drain()
