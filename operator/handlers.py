"""kopf handlers: they only translate watch events into "reconcile this WorkerCluster".

Scale (bench/scale, docs/scale.md): a reconcile reads from watch-fed caches (`cache.py`: one
LIST + WATCH per resource instead of a GET and a LIST per reconcile), the owned Pods, Services,
Ingresses and NetworkPolicies are watched by those informers (not by kopf, which would keep a
worker task and a diff per pod), and process reads run in the background with backoff for pods
that cannot answer (`processes.py`).

Design choices against kopf's known traps:
- Every trigger (WorkerCluster created/updated/resumed, an owned Pod/Service/Ingress/
  NetworkPolicy changed) lands in one keyed work queue, so a WorkerCluster is never reconciled
  by two coroutines at once and a burst of pod events costs one reconcile.
- Owned objects are watched with a label filter (applied server-side) by the cache's informers:
  a pod that dies, fails or gets evicted is acted on when its event arrives.
- No timers, daemons or `on.delete` on WorkerClusters: kopf would add a finalizer and a delete
  could hang while the operator is down. Owned objects go by garbage collection (ownerReferences);
  the periodic resync is a delayed re-queue inside the operator.
- kopf's own bookkeeping (progress, last-handled-configuration) lives in annotations with the
  workerlab.dev prefix, never in status, so the status schema stays fully declared.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import kopf

from workerlab.api.resource import (
    GROUP,
    KIND,
    LABEL_INSTANCE,
    PLURAL,
    VERSION,
)
from workerlab.operator.cache import CachedKube, Caches
from workerlab.operator.controller import Controller, Key
from workerlab.operator.heartbeats import Heartbeats
from workerlab.operator.images import FALLBACK_WORKER_IMAGE, WorkerImage
from workerlab.operator.kube import Kube
from workerlab.operator.metrics import Metrics
from workerlab.operator.processes import ProcessProbe
from workerlab.operator.workqueue import WorkQueue

PEERING_LIFETIME_SECONDS = 15
API_THREADS = 32
PROBE_CONCURRENCY = 8


@dataclass
class Options:
    """Set by __main__ before kopf starts; the defaults suit tests that import this module."""

    metrics_port: int = 0  # 0: no metrics server
    metrics_address: str = "127.0.0.1"
    process_poll_seconds: float = 10.0
    resync_seconds: float = 300.0
    workers: int = 16
    namespaces: list[str] | None = None  # None: every namespace
    default_image: WorkerImage = FALLBACK_WORKER_IMAGE  # for WorkerClusters without spec.image
    peering_lifetime: int = PEERING_LIFETIME_SECONDS


OPTIONS = Options()


def configure_settings(settings: kopf.OperatorSettings) -> None:
    prefix = GROUP
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=prefix, key="last-handled-configuration"
    )
    # Watch streams can stall silently: end each one after a while and reconnect.
    # 9-10 minutes, like client-go's reflectors (5-10 min): at 1,000 WorkerClusters at rest a
    # re-watch is most of what the operator asks of the API server.
    settings.watching.server_timeout = 540
    settings.watching.client_timeout = 600
    settings.watching.connect_timeout = 10
    # One cluster-wide peering object whatever the namespaces served (see manifests/crd/).
    settings.peering.clusterwide = True
    settings.peering.stealth = True
    # A killed instance cannot remove its keep-alive; its successor pauses until that record
    # expires, so keep the record short-lived (kopf's default is 60 s).
    settings.peering.lifetime = OPTIONS.peering_lifetime
    # kopf turns its handler log lines into Events; ours are explicit, keep only its problems.
    settings.posting.level = logging.WARNING


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: Any, **_: Any) -> None:
    configure_settings(settings)
    metrics = Metrics()
    if OPTIONS.metrics_port:
        metrics.serve(OPTIONS.metrics_port, OPTIONS.metrics_address)
    kube = Kube.connect()
    queue: WorkQueue[Key] | None = None
    loop = asyncio.get_running_loop()
    # Every API call is a blocking call in a thread: the default pool (CPUs + 4 threads) would
    # cap the reconcilers' concurrent calls, whatever the API server could take.
    loop.set_default_executor(
        concurrent.futures.ThreadPoolExecutor(max_workers=API_THREADS, thread_name_prefix="kube")
    )

    def enqueue(namespace: str, name: str) -> None:
        if queue is not None:
            queue.add((namespace, name))

    def owned_changed(event_type: str, obj: dict[str, Any]) -> None:
        # From an informer's thread: a pod deleted, failed, evicted or turned Ready, a Service
        # edited by hand. Reconcile its WorkerCluster now, on the event loop.
        namespace, owner = (obj.get("metadata") or {}).get("namespace"), owner_name(obj)
        if namespace and owner:
            loop.call_soon_threadsafe(enqueue, str(namespace), owner)

    caches = Caches()
    caches.start(lambda: Kube.connect(), OPTIONS.namespaces, owned_changed)
    heartbeats = Heartbeats()
    heartbeats.start(Kube.connect())

    def nodes_changed(nodes: set[str]) -> None:
        # A node went quiet or answers again: reconcile the WorkerClusters with pods there, and
        # those whose status still names it lost (their pods there are gone).
        for pod in caches.pods.items():
            if (pod.get("spec") or {}).get("nodeName") in nodes:
                owned_changed("MODIFIED", pod)
        for cluster in caches.clusters.items():
            lost = (cluster.get("status") or {}).get("lostNodes") or []
            if any(entry.get("name") in nodes for entry in lost):
                meta = cluster.get("metadata") or {}
                enqueue(str(meta.get("namespace")), str(meta.get("name")))

    memo.silences = asyncio.create_task(heartbeats.watch_silences(nodes_changed))
    # Process reads get a client of their own: a slow pod proxy never holds a connection the
    # reconcilers need, and a timed-out read is not retried (the probe backs off instead).
    probe_kube = Kube.connect(pool=PROBE_CONCURRENCY, retries=False)
    probe = ProcessProbe(
        probe_kube.pod_processes,
        concurrency=PROBE_CONCURRENCY,
        ttl=OPTIONS.process_poll_seconds,
        background=True,
        on_change=enqueue,
    )
    probe.start_polling()  # process counts refresh on their own: no poll reconciles
    controller = Controller(
        CachedKube(kube, caches),
        probe,
        metrics,
        poll_seconds=OPTIONS.process_poll_seconds,
        resync_seconds=OPTIONS.resync_seconds,
        default_image=OPTIONS.default_image,
        events_in_background=True,
        node_health=heartbeats.health,
    )
    queue = WorkQueue(controller.reconcile, workers=OPTIONS.workers)
    queue.start()
    metrics.workqueue_depth.set_function(queue.pending)
    memo.controller, memo.queue, memo.metrics = controller, queue, metrics
    memo.caches, memo.probe, memo.heartbeats = caches, probe, heartbeats
    logger.info("workerlab operator started (metrics port %s)", OPTIONS.metrics_port or "off")


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    queue = getattr(memo, "queue", None)
    if queue is not None:
        await queue.stop()
    if hasattr(memo, "controller"):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(memo.controller.drain_events(), timeout=5)
    if hasattr(memo, "caches"):
        memo.caches.stop()
    if hasattr(memo, "heartbeats"):
        memo.silences.cancel()
        memo.heartbeats.stop()
    if hasattr(memo, "probe"):
        await memo.probe.stop()


@kopf.on.probe(id="workqueue")
def workqueue_depth(memo: kopf.Memo, **_: Any) -> int:
    queue = getattr(memo, "queue", None)
    depth = queue.pending() if queue is not None else 0
    if hasattr(memo, "metrics"):
        memo.metrics.workqueue_depth.set(depth)
    return depth


def _enqueue(memo: kopf.Memo, namespace: str | None, name: str | None) -> None:
    queue = getattr(memo, "queue", None)
    if queue is not None and namespace and name:
        queue.add((namespace, name))


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
async def cluster_changed(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    _enqueue(memo, namespace, name)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def cluster_event(
    event: kopf.RawEvent, namespace: str | None, name: str, memo: kopf.Memo, **_: Any
) -> None:
    applied = True
    if namespace and hasattr(memo, "caches"):
        # kopf's watch of WorkerClusters feeds the cache (its initial listing has no type).
        kind = str(event.get("type") or "ADDED")
        applied = memo.caches.clusters.apply(kind, dict(event.get("object") or {}))
    # kopf runs each uid's events in a task of its own: the DELETED of a WorkerCluster may come
    # after the ADDED of the next one under its name, whose timers and holds must stay.
    if event.get("type") == "DELETED" and applied and namespace and hasattr(memo, "queue"):
        memo.queue.forget((namespace, name))
        memo.controller.forget((namespace, name))


def owner_name(body: kopf.Body | dict[str, Any]) -> str | None:
    """The WorkerCluster that controls an object, by ownerReference, else by instance label."""
    meta = body.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if (
            ref.get("controller")
            and ref.get("kind") == KIND
            and ref.get("apiVersion", "").startswith(GROUP)
        ):
            return str(ref.get("name"))
    instance = (meta.get("labels") or {}).get(LABEL_INSTANCE)
    return None if instance is None else str(instance)
