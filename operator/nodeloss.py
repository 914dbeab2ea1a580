"""Which nodes count as lost: pure, from each node's last heartbeat as the operator saw it arrive.

Every kubelet renews a Lease in `kube-node-lease` every 10 s (heartbeats.py records when each
renewal arrives, on the operator's own clock, so the kubelets' clocks never matter). The node
controller marks a silent node NotReady only after its grace period (40-50 s) and evicts its pods
after their `unreachable` toleration (300 s by default); a WorkerCluster's own tolerance is
`spec.nodeLossTolerationSeconds` (default 30 s): past it, its pods there are replaced elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

# The kubelet renews every 10 s: one late renewal is not news yet, a second one may be.
SUSPECT_SECONDS = 15.0


@dataclass(frozen=True)
class NodeHealth:
    """The last heartbeat of each node the operator has heard of (none known: nothing is lost)."""

    heartbeats: Mapping[str, datetime] = field(default_factory=dict)

    def silent_for(self, node: str, now: datetime) -> float:
        seen = self.heartbeats.get(node)
        return 0.0 if seen is None else max(0.0, (now - seen).total_seconds())

    def lost(self, tolerance: float, now: datetime) -> dict[str, datetime]:
        """The nodes silent for `tolerance` seconds or more, with their last heartbeat.

        None at all when every node is silent: that is this operator's view going stale (its
        watch stalled, the API server unreachable), not every machine dying at once; the node
        controller stops evicting in a full disruption for the same reason."""
        silent = {n: t for n, t in self.heartbeats.items() if self.silent_for(n, now) >= tolerance}
        if len(silent) == len(self.heartbeats):
            return {}
        return silent

    def seconds_until_lost(self, nodes: set[str], tolerance: float, now: datetime) -> float | None:
        """When the first of `nodes` that has gone quiet (a missed renewal) reaches `tolerance`,
        None if all of them answer: a reconcile is due then even if nothing else changes."""
        waits = [
            tolerance - self.silent_for(node, now)
            for node in nodes
            if SUSPECT_SECONDS <= self.silent_for(node, now) < tolerance
        ]
        return min(waits) if waits else None
