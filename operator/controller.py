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
from datetime import UTC, datetime
from typing import Any, Protocol

from workerlab.api.resource import Reason
from workerlab.operator import events
from workerlab.operator.images import FALLBACK_WORKER_IMAGE, WorkerImage
from workerlab.operator.kube import ApiError
from workerlab.operator.metrics import Metrics
from workerlab.operator.model import ObservedPod, WorkerCluster
from workerlab.operator.processes import ProcessProbe
from workerlab.operator.reconcile import CreatePod, DeletePod, Plan, plan
from workerlab.operator.status import status_patch, with_create_failure
from workerlab.operator.templates import (
    build_ingress,
    build_network_policy,
    build_pod,
    build_service,
    ingress_update,
    network_policy_update,
    service_update,
)

logger = logging.getLogger("workerlab.operator")


class KubeClient(Protocol):
    """What the controller needs from the API server: `cache.CachedKube` (reads from watch-fed
    caches, writes through `kube.Kube`) in production, `kube.Kube` itself, or a recording double
    in the unit tests (all checked against this by the type checker). Writes may answer the
    object written; the controller does not need it."""

    async def get_cluster(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def cluster_exists(self, namespace: str, name: str, uid: str) -> bool: ...
    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]: ...
    async def create_pod(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...
    async def delete_pod(self, namespace: str, name: str, uid: str) -> bool: ...
    async def get_service(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def create_service(self, namespace: str, body: dict[str, Any]) -> Any: ...
    async def replace_service(self, namespace: str, body: dict[str, Any]) -> Any: ...
    async def get_ingress(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def create_ingress(self, namespace: str, body: dict[str, Any]) -> Any: ...
    async def replace_ingress(self, namespace: str, body: dict[str, Any]) -> Any: ...
    async def delete_ingress(self, namespace: str, name: str) -> None: ...
    async def get_network_policy(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def create_network_policy(self, namespace: str, body: dict[str, Any]) -> Any: ...
    async def replace_network_policy(self, namespace: str, body: dict[str, Any]) -> Any: ...
    async def delete_network_policy(self, namespace: str, name: str) -> None: ...
    async def patch_cluster_status(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> Any: ...
    async def post_event(
        self, involved: dict[str, Any], event_type: str, reason: str, message: str, now: Any
    ) -> None: ...


Key = tuple[str, str]  # (namespace, name)
MAX_PENDING_EVENTS = 1000  # client-go's broadcaster queue holds 1,000 too


def _now() -> datetime:
    return datetime.now(UTC)


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
    events_dropped: int = 0
    _said: dict[Key, set[str]] = field(default_factory=dict)
    _event_tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def reconcile(self, key: Key) -> float | None:
        started = time.perf_counter()
        try:
            again, requeued = await self._reconcile(key)
        except Exception as error:
            self.metrics.reconcile_total.labels(result="error").inc()
            self.metrics.reconcile_errors.inc()
            logger.warning("reconcile failed: namespace=%s name=%s error=%s", *key, error)
            raise
        finally:
            self.metrics.reconcile_time.observe(time.perf_counter() - started)
        # As controller-runtime counts: the periodic resync and process poll are not requeues;
        # only the core asking to be called again (a backoff expiring) is.
        self.metrics.reconcile_total.labels(result="requeue_after" if requeued else "success").inc()
        return again

    def forget(self, key: Key) -> None:
        self._said.pop(key, None)
        self.probe.forget(*key)

    async def _reconcile(self, key: Key) -> tuple[float | None, bool]:
        """(seconds until the next look or None, whether the core itself asked to requeue)."""
        namespace, name = key
        body = await self.kube.get_cluster(namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            # Garbage collection removes what it owned; nothing to do, nothing to remember.
            self.forget(key)
            return None, False
        cluster = WorkerCluster.from_body(body, self.default_image)
        raw_pods = await self.kube.list_pods(namespace, cluster.selector_string)
        now = self.clock()
        # Process counts only feed the status, never the pod actions: act on the pods first,
        # then read the processes (their proxy GETs would otherwise queue ahead of the deletes
        # and creates in the client's thread pool), and only then compute the status.
        result = plan(cluster, [ObservedPod.from_pod(p) for p in raw_pods], now)
        if result.creates and not await self.kube.cluster_exists(namespace, name, cluster.uid):
            # A cached WorkerCluster may outlive its deletion (a DELETED event missed while the
            # operator was paused): creating pods for it would fight garbage collection forever.
            self.forget(key)
            return None, False
        refused = await self._apply(cluster, body, result, now)
        pods = await self._observe(cluster, raw_pods)
        result = replace(result, status=plan(cluster, pods, now).status)
        await self._ensure_service(cluster, body, now)
        await self._ensure_ingress(cluster, body, now)
        await self._ensure_network_policy(cluster, body, now)
        if refused is not None:
            # Say it in status too, then fail the reconcile so the work queue retries with backoff.
            status = with_create_failure(cluster, result.status, refused.message, now)
            await self._write_status(cluster, body, replace(result, status=status), now)
            raise refused
        await self._write_status(cluster, body, result, now)

        logger.info(
            "reconciled: namespace=%s name=%s phase=%s ready=%s/%s processes=%s actions=%d",
            namespace,
            name,
            result.status["phase"],
            result.status["readyReplicas"],
            cluster.spec.replicas,
            result.status["readyProcesses"],
            len(result.actions),
        )
        again = self.resync_seconds
        if result.status["readyReplicas"] and not self.probe.polls_itself:
            # Keep process counts fresh: come back when one of the serving pods is due to be
            # read again (every poll for pods that answer, less often for pods that do not).
            serving = [p.uid for p in pods if p.ready and not p.terminating and p.owned_by(cluster)]
            again = min(again, max(self.poll_seconds, self.probe.due_in(serving)))
        if result.requeue_after is not None:
            again = min(again, result.requeue_after + 0.1)
        return again, result.requeue_after is not None

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
        self, cluster: WorkerCluster, body: dict[str, Any], result: Plan, now: datetime
    ) -> ApiError | None:
        """Carry out the plan; a pod creation the API server refuses (4xx) is returned."""
        # Deletions are independent of each other: issue them together, as the ReplicaSet
        # controller does, so scaling 10 -> 2 waits for 8 round trips at once, not in a row.
        await asyncio.gather(*(self._delete_pod(cluster, body, a, now) for a in result.deletes))
        replacing = events.replacing_failed(result)
        refused: ApiError | None = None
        # Creations go in slow-start batches of 1, 2, 4, ... as the ReplicaSet controller's do:
        # 5 pods wait for 3 round trips, not 5, and a refused first pod stops the rest.
        creates, batch = list(result.creates), 1
        while creates and refused is None:
            now_batch, creates = creates[:batch], creates[batch:]
            batch *= 2
            outcomes = await asyncio.gather(
                *(self._create_pod(cluster, body, a, replacing, now) for a in now_batch),
                return_exceptions=True,
            )
            for outcome in outcomes:
                if not isinstance(outcome, BaseException):
                    continue
                if not isinstance(outcome, ApiError):
                    raise outcome
                if not 400 <= outcome.status < 500 or outcome.status in (409, 429):
                    raise outcome  # transient: retried as any other error
                refused = outcome  # the next pods would be refused the same way
        if (scaled := events.scaled(result, cluster.spec.replicas)) is not None:
            await self._post(body, scaled, now)
        for reason, message in result.warnings:
            await self._say_once(cluster, body, "Warning", reason, message, now)
        return refused

    async def _delete_pod(
        self, cluster: WorkerCluster, body: dict[str, Any], action: DeletePod, now: datetime
    ) -> None:
        if await self.kube.delete_pod(cluster.namespace, action.name, action.uid):
            self.metrics.pods_deleted.labels(reason=action.reason).inc()
            await self._post(body, events.pod_deleted(action), now)

    async def _create_pod(
        self,
        cluster: WorkerCluster,
        body: dict[str, Any],
        action: CreatePod,
        replacing: bool,
        now: datetime,
    ) -> None:
        try:
            created = await self.kube.create_pod(cluster.namespace, build_pod(cluster))
        except ApiError as error:
            await self._post(body, events.pod_create_failed(error.message), now)
            raise
        self.metrics.pods_created.labels(reason=action.reason).inc()
        event = events.pod_created(action, created["metadata"]["name"], replacing)
        if event.reason == Reason.REPLACED_POD:
            self.metrics.pods_replaced.inc()
        await self._post(body, event, now)

    # -- service and ingress -------------------------------------------------------------------

    def _controlled(self, cluster: WorkerCluster, obj: dict[str, Any]) -> bool:
        refs = obj["metadata"].get("ownerReferences") or []
        return any(r.get("controller") and r.get("uid") == cluster.uid for r in refs)

    async def _ensure_service(
        self, cluster: WorkerCluster, body: dict[str, Any], now: datetime
    ) -> None:
        desired = build_service(cluster)
        actual = await self.kube.get_service(cluster.namespace, cluster.name)
        if actual is None:
            await self.kube.create_service(cluster.namespace, desired)
            kind = cluster.spec.service.type
            await self._event(
                body,
                "Normal",
                Reason.CREATED_SERVICE,
                f"Created {kind} Service {cluster.name}",
                now,
            )
        elif not self._controlled(cluster, actual):
            await self._say_once(
                cluster,
                body,
                "Warning",
                Reason.SERVICE_CONFLICT,
                f"Service {cluster.name} exists and is not owned by this WorkerCluster; left alone",
                now,
            )
        elif (update := service_update(desired, actual)) is not None:
            await self.kube.replace_service(cluster.namespace, update)
            await self._event(
                body,
                "Normal",
                Reason.UPDATED_SERVICE,
                f"Service {cluster.name} differed from the spec; restored",
                now,
            )

    async def _ensure_ingress(
        self, cluster: WorkerCluster, body: dict[str, Any], now: datetime
    ) -> None:
        desired = build_ingress(cluster)
        actual = await self.kube.get_ingress(cluster.namespace, cluster.name)
        if actual is not None and not self._controlled(cluster, actual):
            if desired is not None:
                await self._say_once(
                    cluster,
                    body,
                    "Warning",
                    Reason.INGRESS_CONFLICT,
                    f"Ingress {cluster.name} exists, not owned by this WorkerCluster; left alone",
                    now,
                )
            return
        if desired is None:
            if actual is not None:
                await self.kube.delete_ingress(cluster.namespace, cluster.name)
                await self._event(
                    body, "Normal", Reason.DELETED_INGRESS, f"Deleted Ingress {cluster.name}", now
                )
        elif actual is None:
            await self.kube.create_ingress(cluster.namespace, desired)
            host = cluster.spec.ingress.host
            await self._event(
                body,
                "Normal",
                Reason.CREATED_INGRESS,
                f"Created Ingress {cluster.name} for {host}",
                now,
            )
        elif (update := ingress_update(desired, actual)) is not None:
            await self.kube.replace_ingress(cluster.namespace, update)
            await self._event(
                body,
                "Normal",
                Reason.UPDATED_INGRESS,
                f"Ingress {cluster.name} differed from the spec; restored",
                now,
            )

    async def _ensure_network_policy(
        self, cluster: WorkerCluster, body: dict[str, Any], now: datetime
    ) -> None:
        desired = build_network_policy(cluster)
        name = cluster.name
        actual = await self.kube.get_network_policy(cluster.namespace, name)
        if actual is not None and not self._controlled(cluster, actual):
            if desired is not None:
                await self._say_once(
                    cluster,
                    body,
                    "Warning",
                    Reason.NETWORK_POLICY_CONFLICT,
                    f"NetworkPolicy {name} exists, not owned by this WorkerCluster; left alone",
                    now,
                )
            return
        if desired is None:
            if actual is not None:
                await self.kube.delete_network_policy(cluster.namespace, name)
                await self._event(
                    body,
                    "Normal",
                    Reason.DELETED_NETWORK_POLICY,
                    f"Deleted NetworkPolicy {name}",
                    now,
                )
        elif actual is None:
            await self.kube.create_network_policy(cluster.namespace, desired)
            await self._event(
                body,
                "Normal",
                Reason.CREATED_NETWORK_POLICY,
                f"Created NetworkPolicy {name}: port {cluster.spec.port} from this namespace, "
                "the Ingress controller and the listed sources",
                now,
            )
        elif (update := network_policy_update(desired, actual)) is not None:
            await self.kube.replace_network_policy(cluster.namespace, update)
            await self._event(
                body,
                "Normal",
                Reason.UPDATED_NETWORK_POLICY,
                f"NetworkPolicy {name} differed from the spec; restored",
                now,
            )

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
            await self._post(body, event, now)

    async def _say_once(
        self,
        cluster: WorkerCluster,
        body: dict[str, Any],
        event_type: str,
        reason: str,
        message: str,
        now: datetime,
    ) -> None:
        """Events for standing situations are posted when they change, not on every poll."""
        key = (cluster.namespace, cluster.name)
        said = self._said.setdefault(key, set())
        if f"{reason}:{message}" in said:
            return
        said.add(f"{reason}:{message}")
        await self._event(body, event_type, reason, message, now)

    async def _post(self, body: dict[str, Any], event: events.Event, now: datetime) -> None:
        await self._event(body, event.type, event.reason, event.message, now)

    async def _event(
        self, body: dict[str, Any], event_type: str, reason: str, message: str, now: datetime
    ) -> None:
        meta = body["metadata"]
        log = logger.warning if event_type == "Warning" else logger.info
        log(
            "event: namespace=%s name=%s reason=%s message=%s",
            meta["namespace"],
            meta["name"],
            reason,
            message,
        )
        if not self.events_in_background:
            await self._send_event(body, event_type, reason, message, now)
            return
        # As client-go's event recorder: the reconcile does not wait for its Events (at 1,000
        # WorkerClusters, 5 of a reconcile's ~11 round trips); a bounded backlog, then drops.
        if len(self._event_tasks) >= MAX_PENDING_EVENTS:
            self.events_dropped += 1
            if self.events_dropped == 1:
                logger.warning("too many Events pending: dropping some (counted, logged once)")
            return
        task = asyncio.create_task(self._send_event(body, event_type, reason, message, now))
        self._event_tasks.add(task)
        task.add_done_callback(self._event_tasks.discard)

    async def _send_event(
        self, body: dict[str, Any], event_type: str, reason: str, message: str, now: datetime
    ) -> None:
        try:
            await self.kube.post_event(body, event_type, reason, message, now)
        except ApiError as error:  # an Event is worth a log line, never a failed reconcile
            logger.warning("posting event failed: %s", error)
        except Exception as error:
            if not self.events_in_background:
                raise
            logger.warning("posting event failed: %s", error)

    async def drain_events(self) -> None:
        """Wait for the Events posted in the background (tests, shutdown)."""
        while self._event_tasks:
            await asyncio.gather(*list(self._event_tasks), return_exceptions=True)
