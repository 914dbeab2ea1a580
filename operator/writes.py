"""The writes of one reconcile, and the refused ones held back: the shell's side of "no silent
failure". An API error on a write is turned into a `Refusal` by the core (`status.refusal_for`;
None means transient, and the error goes up to the work queue as before); a refusal is held
(`reconcile.HeldWrite`: backoff 10 s ... 5 min, one try at once when what the write depends on
changed), and the reconcile goes on with the other objects, then writes the Degraded condition
(`status.with_refusals`) whose transition posts one Warning Event per change of cause.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
from typing import Any

from workerlab.operator.kube import ApiError
from workerlab.operator.reconcile import HeldWrite, held_after
from workerlab.operator.status import Refusal, refusal_for

logger = logging.getLogger("workerlab.operator")


def digest(obj: Any) -> str:
    """What a write depends on, in a few bytes (a desired object: when it changes, try again)."""
    return sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Writes:
    """One reconcile's view of the held writes of its WorkerCluster (by kind: Pod, Service,
    Ingress, NetworkPolicy); `held` is the controller's dict for that key, updated in place."""

    held: dict[str, HeldWrite]
    now: datetime
    refusals: list[Refusal] = field(default_factory=list)
    _consulted: set[str] = field(default_factory=set)

    def may(self, kind: str, context: str) -> bool:
        """Whether a write of `kind` is tried now; if not, its refusal still stands."""
        self._consulted.add(kind)
        held = self.held.get(kind)
        if held is not None and held.holds(context, self.now):
            self.refusals.append(held.refusal)
            return False
        return True

    def refused(self, kind: str, verb: str, name: str, error: ApiError, context: str) -> bool:
        """Record a refusal; False when the error is transient (the caller raises it)."""
        refusal = refusal_for(kind, verb, name, error.status, error.message)
        if refusal is None:
            return False
        self._consulted.add(kind)
        held = held_after(self.held.get(kind), refusal, context, self.now)
        self.held[kind] = held
        self.refusals.append(refusal)
        # The Event (when the cause is new) is the log line users see; retries stay quiet.
        logger.debug(
            "write refused: kind=%s name=%s failures=%d retry in %.0fs: %s",
            kind,
            name,
            held.failures,
            held.wait(self.now),
            error,
        )
        return True

    def done(self, kind: str) -> None:
        self._consulted.add(kind)
        self.held.pop(kind, None)

    def conflict(self, refusal: Refusal) -> None:
        """A standing situation seen without a write (someone else's object has the name)."""
        self.done(refusal.kind)
        self.refusals.append(refusal)

    async def attempt(
        self, kind: str, verb: str, name: str, context: str, call: Callable[[], Awaitable[Any]]
    ) -> bool:
        """Do the write unless it is held; True when it was done."""
        if not self.may(kind, context):
            return False
        try:
            await call()
        except ApiError as error:
            if not self.refused(kind, verb, name, error, context):
                raise
            return False
        self.done(kind)
        return True

    def finish(self) -> float | None:
        """Forget holds this reconcile no longer needed (the object is no longer wanted, or it
        was done); the seconds until the first remaining one may be tried, if any."""
        for kind in list(self.held):
            if kind not in self._consulted:
                del self.held[kind]
        waits = [held.wait(self.now) for held in self.held.values()]
        return min(waits) if waits else None
