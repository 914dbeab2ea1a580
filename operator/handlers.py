"""kopf handlers: they only translate watch events into "reconcile this WorkerCluster".

Design choices against kopf's known traps:
- Every trigger (WorkerCluster created/updated/resumed, an owned Pod/Service/Ingress/
  NetworkPolicy changed) lands in one keyed work queue, so a WorkerCluster is never reconciled
  by two coroutines at once and a burst of pod events costs one reconcile.
- Pods are watched with `on.event` and a label filter (applied server-side as well): a pod that
  dies, fails or gets evicted is acted on when its event arrives; `on.update` would not fire for
  status changes.
- No timers, daemons or `on.delete` on WorkerClusters: kopf would add a finalizer and a delete
  could hang while the operator is down. Owned objects go by garbage collection (ownerReferences);
  the periodic resync is a delayed re-queue inside the operator.
- kopf's own bookkeeping (progress, last-handled-configuration) lives in annotations with the
  workerlab.dev prefix, never in status, so the status schema stays fully declared.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import kopf

from workerlab.api.resource import (
    GROUP,
    KIND,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    MANAGER,
    PLURAL,
    VERSION,
)
from workerlab.operator.controller import Controller, Key
from workerlab.operator.kube import Kube
from workerlab.operator.metrics import Metrics
from workerlab.operator.processes import ProcessProbe
from workerlab.operator.workqueue import WorkQueue

OWNED = {LABEL_MANAGED_BY: MANAGER}
OWNED_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGER}"
PEERING_LIFETIME_SECONDS = 15


@dataclass
class Options:
    """Set by __main__ before kopf starts; the defaults suit tests that import this module."""

    metrics_port: int = 0  # 0: no metrics server
    metrics_address: str = "127.0.0.1"
    process_poll_seconds: float = 10.0
    resync_seconds: float = 300.0
    workers: int = 4


OPTIONS = Options()


def configure_settings(settings: kopf.OperatorSettings) -> None:
    prefix = GROUP
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=prefix, key="last-handled-configuration"
    )
    # Watch streams can stall silently: end each one after a while and reconnect.
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    settings.watching.connect_timeout = 10
    # Only our pods/services/ingresses/policies travel over the wire, not every pod in the cluster.
    for resource in ("pods", "services", "ingresses", "networkpolicies"):
        settings.watching.label_selectors[resource] = OWNED_SELECTOR
    # One cluster-wide peering object whatever the namespaces served (see manifests/crd/).
    settings.peering.clusterwide = True
    settings.peering.stealth = True
    # A killed instance cannot remove its keep-alive; its successor pauses until that record
    # expires, so keep the record short-lived (kopf's default is 60 s).
    settings.peering.lifetime = PEERING_LIFETIME_SECONDS
    # kopf turns its handler log lines into Events; ours are explicit, keep only its problems.
    settings.posting.level = logging.WARNING


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: Any, **_: Any) -> None:
    configure_settings(settings)
    metrics = Metrics()
    if OPTIONS.metrics_port:
        metrics.serve(OPTIONS.metrics_port, OPTIONS.metrics_address)
    kube = Kube.connect()
    probe = ProcessProbe(kube.pod_processes, ttl=OPTIONS.process_poll_seconds)
    controller = Controller(
        kube,
        probe,
        metrics,
        poll_seconds=OPTIONS.process_poll_seconds,
        resync_seconds=OPTIONS.resync_seconds,
    )
    queue: WorkQueue[Key] = WorkQueue(controller.reconcile, workers=OPTIONS.workers)
    queue.start()
    metrics.workqueue_depth.set_function(queue.pending)
    memo.controller, memo.queue, memo.metrics = controller, queue, metrics
    logger.info("workerlab operator started (metrics port %s)", OPTIONS.metrics_port or "off")


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    queue = getattr(memo, "queue", None)
    if queue is not None:
        await queue.stop()


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
    if event.get("type") == "DELETED" and namespace and hasattr(memo, "queue"):
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


@kopf.on.event("pods", labels=OWNED)
@kopf.on.event("services", labels=OWNED)
@kopf.on.event("networking.k8s.io", "v1", "ingresses", labels=OWNED)
@kopf.on.event("networking.k8s.io", "v1", "networkpolicies", labels=OWNED)
async def owned_object_changed(
    body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    # A pod deleted, failed, evicted or turned Ready, a Service edited by hand: reconcile now.
    _enqueue(memo, namespace, owner_name(body))
