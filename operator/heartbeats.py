"""The nodes' heartbeats as they arrive: the Leases each kubelet renews in `kube-node-lease`.

Read with a watch of their own (not one of the controller's caches: without RBAC on Leases the
operator still works, it just never finds a node lost), and timed on this process' clock when a
renewal *arrives*, as client-go's leader election times a Lease, so skew with the kubelets' clocks
does not matter. `watch_silences` wakes the WorkerClusters with pods on a node when it goes quiet
and when it answers again; the core (nodeloss.py, reconcile.py) decides the rest.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from workerlab.operator.informer import Informer, Store, Streamer
from workerlab.operator.nodeloss import SUSPECT_SECONDS, NodeHealth

logger = logging.getLogger(__name__)

NODE_LEASE_NAMESPACE = "kube-node-lease"
NODE_LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{NODE_LEASE_NAMESPACE}/leases"
CHECK_SECONDS = 1.0


def _now() -> datetime:
    return datetime.now(UTC)


def first_sight(renewed: str, now: datetime) -> datetime:
    """When a node first seen (at start, or a standby just elected) last renewed: its Lease's
    own renewTime, but never more than SUSPECT_SECONDS ago, so a kubelet's clock running behind
    cannot make a healthy node look lost (it renews within 10 s), while a node already silent is
    found lost SUSPECT_SECONDS sooner than if it counted from now."""
    try:
        renewal = datetime.fromisoformat(renewed)
    except ValueError:
        return now
    if renewal.tzinfo is None:
        renewal = renewal.replace(tzinfo=UTC)
    return min(now, max(renewal, now - timedelta(seconds=SUSPECT_SECONDS)))


class Heartbeats:
    def __init__(self, clock: Callable[[], datetime] = _now) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # node -> (the Lease's renewTime, when this process saw that renewal arrive)
        self._seen: dict[str, tuple[str, datetime]] = {}
        self.informer: Informer | None = None

    def observe(self, event_type: str, lease: dict[str, Any]) -> None:
        """An informer's event (its thread): a renewal counts from when it arrives."""
        node = str((lease.get("metadata") or {}).get("name") or "")
        renewed = str((lease.get("spec") or {}).get("renewTime") or "")
        if not node:
            return
        with self._lock:
            if event_type == "DELETED":  # the Node was deleted: nothing left to lose
                self._seen.pop(node, None)
            elif node not in self._seen:
                self._seen[node] = (renewed, first_sight(renewed, self._clock()))
            elif self._seen[node][0] != renewed:
                self._seen[node] = (renewed, self._clock())

    def health(self) -> NodeHealth:
        with self._lock:
            return NodeHealth({node: seen for node, (_, seen) in self._seen.items()})

    def start(self, kube: Streamer) -> None:
        self.informer = Informer(
            kube,
            NODE_LEASES,
            Store(index_label=None),
            on_event=self.observe,
            name="informer-node-leases",
            namespace=NODE_LEASE_NAMESPACE,
        )
        self.informer.start()

    def stop(self) -> None:
        if self.informer is not None:
            self.informer.stop()

    async def watch_silences(
        self, nodes_changed: Callable[[set[str]], None], period: float = CHECK_SECONDS
    ) -> None:
        """Call `nodes_changed` with the nodes that went quiet (a renewal missed) or answered
        again since the last look; the reconciles then time the rest themselves."""
        quiet: set[str] = set()
        while True:
            await asyncio.sleep(period)
            now, health = self._clock(), self.health()
            silent = {n for n in health.heartbeats if health.silent_for(n, now) >= SUSPECT_SECONDS}
            if changed := silent ^ quiet:
                logger.info("nodes quiet: %s (changed: %s)", sorted(silent), sorted(changed))
                nodes_changed(changed)
            quiet = silent
