"""Which pod changes were heals: the ledger behind the operator's and the arbiter's timeline
entries. Pure; the model feeds it what the watches and polls saw, in whatever order they came.

A heal is a replacement after a fault (a pod deleted by someone else, or failed; a process that
died), never a rollout or a scale step. The operator's own Events are the truth here: it says
which pods it deleted on purpose ("Deleted pod X: rolling update" / "scale down") and which pod
it created as a replacement (ReplacedPod). The pod watch and the Event watch are two streams, so
either may arrive first: the ledger waits for the other half.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FORGET_AFTER_S = 900.0  # a half that never found its other half


@dataclass(frozen=True)
class Heal:
    wc: str | None
    pod: str  # the new pod, now Ready
    replaced: str | None  # the pod it replaced, when the page saw it go
    at: float  # when it became Ready
    heal_s: float  # from the fault (or the operator's word, when the fault was not seen)


@dataclass
class HealLedger:
    gone: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # wc -> faults
    on_purpose: dict[str, float] = field(default_factory=dict)  # pods the operator deleted
    replacements: dict[str, tuple[str | None, float]] = field(default_factory=dict)  # said
    ready: dict[str, tuple[str | None, float]] = field(default_factory=dict)  # Ready, unsaid
    reforks: set[tuple[str, int]] = field(default_factory=set)  # (pod, dead pid) told

    # --- pods ------------------------------------------------------------------------------
    def pod_gone(self, wc: str, pod: str, live: int, desired: int, now: float) -> None:
        """`pod` is terminating or gone; `live`: its WorkerCluster's other live pods."""
        if pod in self.on_purpose or any(n == pod for n, _ in self.gone.get(wc, [])):
            return
        if live >= desired:
            return  # more than enough left: a scale-down whose new spec came first
        self.gone.setdefault(wc, []).append((pod, now))

    def scaled_down(self, wc: str, missing: int) -> None:
        """The lower spec arrived: keep only as many open faults as pods are really missing."""
        gone = self.gone.get(wc)
        if gone:
            del gone[: max(0, len(gone) - missing)]

    def pod_ready(self, wc: str | None, pod: str, now: float) -> Heal | None:
        if pod in self.replacements:
            return self._heal(pod, wc, now)
        self.ready[pod] = (wc, now)  # its ReplacedPod Event may come after
        return None

    # --- the operator's Events ------------------------------------------------------------
    def deleted_on_purpose(self, pod: str, at: float) -> None:
        self.on_purpose[pod] = at
        for gone in self.gone.values():  # its deletion was seen first: it was no fault
            gone[:] = [(n, t) for n, t in gone if n != pod]
        self._forget(at)

    def replacement(self, wc: str | None, pod: str, at: float) -> Heal | None:
        self.replacements[pod] = (wc, at)
        self._forget(at)
        if pod in self.ready:  # Ready before the Event arrived
            wc_seen, ready_at = self.ready.pop(pod)
            return self._heal(pod, wc_seen or wc, ready_at)
        return None

    def _heal(self, pod: str, wc: str | None, ready_at: float) -> Heal:
        _, said_at = self.replacements.pop(pod)
        gone = self.gone.get(wc or "") or []
        replaced, since = gone.pop(0) if gone else (None, said_at)
        return Heal(wc, pod, replaced, ready_at, ready_at - since)

    # --- the arbiter's re-forks -----------------------------------------------------------
    def first_refork(self, pod: str, dead_pid: int) -> bool:
        """True the first time a re-fork is seen (in /processes or the operator's Event)."""
        if (pod, dead_pid) in self.reforks:
            return False
        self.reforks.add((pod, dead_pid))
        return True

    def _forget(self, now: float) -> None:
        horizon = now - FORGET_AFTER_S
        for name in [n for n, t in self.on_purpose.items() if t < horizon]:
            del self.on_purpose[name]
        for table in (self.replacements, self.ready):
            for name in [n for n, (_, t) in table.items() if t < horizon]:
                del table[name]
