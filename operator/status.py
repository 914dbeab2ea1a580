"""The WorkerCluster status: counts, Deployment-style conditions, per-pod summary. Pure.

Conditions keep their lastTransitionTime unless their status flips, and nothing in here reads
the clock except for that, so an unchanged world yields a byte-identical status (no writes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workerlab.api.objects import conditions_by_type, format_time
from workerlab.api.resource import ConditionType, Phase, Reason
from workerlab.operator.model import FailureBackoff, ObservedPod, WorkerCluster

MAX_PODS_IN_STATUS = 50
MAX_MESSAGE = 400


@dataclass(frozen=True)
class Counts:
    desired: int
    replicas: int
    ready: int
    updated: int
    updated_ready: int
    outdated: int
    waiting_backoff: int
    ready_processes: int
    in_place: int = 0  # current pods still taking a change in place (inplace.pending)

    @classmethod
    def of(
        cls,
        active: list[ObservedPod],
        current: list[ObservedPod],
        desired: int,
        pods_waiting_backoff: int,
        in_place: int = 0,
    ) -> Counts:
        return cls(
            desired=desired,
            replicas=len(active),
            ready=sum(p.ready for p in active),
            updated=len(current),
            updated_ready=sum(p.ready for p in current),
            outdated=len(active) - len(current),
            waiting_backoff=pods_waiting_backoff,
            ready_processes=sum(p.processes_alive or 0 for p in active if p.ready),
            in_place=in_place,
        )

    @property
    def converged(self) -> bool:
        return self.replicas == self.updated == self.updated_ready == self.desired and (
            not self.in_place
        )


def _condition(
    prior: dict[str, dict[str, Any]],
    kind: str,
    status: str,
    reason: str,
    message: str,
    now: datetime,
    generation: int,
) -> dict[str, Any]:
    before = prior.get(kind)
    if before is None or before.get("status") != status:
        since = format_time(now)
    else:
        since = str(before.get("lastTransitionTime", format_time(now)))
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "lastTransitionTime": since,
        "observedGeneration": generation,
    }


def degradation(pods: list[ObservedPod]) -> tuple[str, str] | None:
    """(reason, message) of the first pod that will not get well on its own, if any."""
    for pod in sorted(pods, key=lambda p: p.name):
        if pod.terminating:
            continue
        if pod.crash_looping:
            reason = pod.waiting_reason if pod.stuck else "CrashLoopBackOff"
            detail = f"pod {pod.name}: {reason}, {pod.restarts} restarts"
            if pod.last_exit_code is not None:
                detail += f"; last exit code {pod.last_exit_code}"
            if pod.last_exit_message:
                detail += f": {pod.last_exit_message.splitlines()[-1]}"
            return reason or "PodStuck", detail
        if pod.phase == "Failed":
            reason = pod.status_reason or "PodFailed"
            return reason, f"pod {pod.name} failed ({reason}); it is replaced with backoff"
    return None


def _progress(counts: Counts) -> tuple[str, str]:
    if counts.outdated:
        return "RollingUpdate", f"{counts.updated}/{counts.desired} pods updated"
    if counts.replicas < counts.desired:
        return "ScalingUp", f"{counts.replicas}/{counts.desired} pods exist"
    if counts.replicas > counts.desired:
        return "ScalingDown", f"{counts.replicas} pods exist, {counts.desired} wanted"
    if counts.in_place:
        return "ChangingInPlace", f"{counts.in_place}/{counts.updated} pods changing in place"
    return "WaitingForPods", f"{counts.updated_ready}/{counts.desired} pods ready"


def pod_summary(
    pods: list[ObservedPod], current_hash: str, in_place: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """One entry per pod; `in_place`: pod name -> the change it is taking in place."""
    summary = []
    for pod in sorted(pods, key=lambda p: p.name)[:MAX_PODS_IN_STATUS]:
        entry: dict[str, Any] = {
            "name": pod.name,
            "phase": "Terminating" if pod.terminating else pod.phase,
            "ready": pod.ready and not pod.terminating,
            "restarts": pod.restarts,
            "updated": pod.template_hash == current_hash,
        }
        if pod.node:
            entry["node"] = pod.node
        if pod.processes_alive is not None:
            entry["processes"] = pod.processes_alive
        reason = pod.waiting_reason or pod.status_reason
        if reason:
            entry["reason"] = reason
        if (change := (in_place or {}).get(pod.name)) is not None:
            entry["inPlace"] = change
        summary.append(entry)
    return summary


def build_status(
    cluster: WorkerCluster,
    owned: list[ObservedPod],
    counts: Counts,
    now: datetime,
    backoff: FailureBackoff,
    current_hash: str,
    *,
    paused: bool,
    pending_actions: int = 0,
    waiting_failed: int = 0,
    lost_nodes: list[dict[str, str]] | None = None,
    in_place: dict[str, str] | None = None,
) -> dict[str, Any]:
    prior = conditions_by_type({"status": cluster.status})
    gen = cluster.generation

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return _condition(prior, kind, status, reason, message, now, gen)

    ready_msg = f"{counts.updated_ready}/{counts.desired} pods ready and up to date"
    ready = (
        condition(ConditionType.READY, "True", "AllPodsReady", ready_msg)
        if counts.converged
        else condition(ConditionType.READY, "False", "PodsNotReady", ready_msg)
    )
    if paused:
        progressing = condition(
            ConditionType.PROGRESSING, "Unknown", Reason.PAUSED, "spec.paused is true"
        )
    elif counts.converged and not pending_actions:
        progressing = condition(ConditionType.PROGRESSING, "False", "Complete", ready_msg)
    else:
        progressing = condition(ConditionType.PROGRESSING, "True", *_progress(counts))
    trouble = degradation(owned)
    if trouble is None and waiting_failed:
        trouble = ("BackoffReplacingFailedPods", f"{waiting_failed} failed pods wait for backoff")
    degraded = (
        condition(ConditionType.DEGRADED, "True", *trouble)
        if trouble
        else condition(ConditionType.DEGRADED, "False", "AsExpected", "no pod is failing")
    )

    if paused:
        phase = Phase.PAUSED
    elif trouble:
        phase = Phase.DEGRADED
    elif counts.converged and not pending_actions:
        phase = Phase.READY
    else:
        phase = Phase.PROGRESSING

    return {
        "observedGeneration": gen,
        "replicas": counts.replicas,
        "readyReplicas": counts.ready,
        "updatedReplicas": counts.updated,
        "availableReplicas": counts.ready,
        "readyProcesses": counts.ready_processes,
        "selector": cluster.selector_string,
        "templateHash": current_hash,
        # What the current template runs (during a rollout, the new pods' image): derived from
        # the spec and the operator's default only, so it changes only when they do.
        "image": cluster.image.reference,
        "phase": phase,
        "conditions": [ready, progressing, degraded],
        "pods": pod_summary(owned, current_hash, in_place),
        "failureBackoff": backoff.to_status(),
        "lostNodes": lost_nodes or [],
    }


# -- refusals: what stops a reconcile ---------------------------------------------------------
# A write the API server refuses (a quota, admission, an invalid value it alone can judge, the
# operator's RBAC) or a name someone else's object holds is not retried in a tight loop and never
# said in a log line only: it is the Degraded condition (reason below, the API server's message),
# one Warning Event per change of cause (events.transitions) and a retry with backoff
# (reconcile.HeldWrite).

REFUSED_REASON: dict[str, str] = {
    "Pod": Reason.FAILED_CREATE,  # the ReplicaSet controller's name for it
    "Service": Reason.SERVICE_REFUSED,
    "Ingress": Reason.INGRESS_REFUSED,
    "NetworkPolicy": Reason.NETWORK_POLICY_REFUSED,
}
CONFLICT_REASON: dict[str, str] = {
    "Service": Reason.SERVICE_CONFLICT,
    "Ingress": Reason.INGRESS_CONFLICT,
    "NetworkPolicy": Reason.NETWORK_POLICY_CONFLICT,
}
REFUSAL_REASONS = frozenset(REFUSED_REASON.values()) | frozenset(CONFLICT_REASON.values())
# HTTP statuses worth a plain retry (the work queue's): overload, timeouts, a stale
# resourceVersion, an expired token. Any other 4xx is the API server's considered answer.
TRANSIENT = frozenset({401, 408, 409, 410, 429})
_QUOTED = re.compile(r'"[^"]*"')
_NUMBER = re.compile(r"\d[\w.]*")


@dataclass(frozen=True)
class Refusal:
    """Why this reconcile could not do what the spec asks, in the WorkerCluster's words."""

    kind: str  # Pod | Service | Ingress | NetworkPolicy
    reason: str  # the Degraded condition's reason and the Warning Event's
    message: str  # names the object and quotes the API server

    @property
    def cause(self) -> str:
        return cause_key(self.reason, self.message[:MAX_MESSAGE])  # as the condition keeps it


def cause_key(reason: str, message: str) -> str:
    """What stays the same while the cause does: the reason and the message without quoted
    names (a pod's generated name) and numbers (a quota's `used: pods=4`)."""
    return f"{reason}:{_NUMBER.sub('#', _QUOTED.sub('_', message))}"


def refusal_for(kind: str, verb: str, name: str, code: int, api_message: str) -> Refusal | None:
    """The Refusal an API error on a write means, or None for a transient one (retried by the
    work queue as any error). `verb`: create | update | delete; `name`: the object's name."""
    if code == 409 and verb == "create" and kind in CONFLICT_REASON:
        # AlreadyExists: an object of someone else's holds the name (the caches see only ours).
        return conflict(kind, name, api_message)
    if not 400 <= code < 500 or code in TRANSIENT:
        return None
    if code == 404 and verb != "create":
        return None  # gone meanwhile: the next reconcile sees it
    what = "a pod" if kind == "Pod" else f"{kind} {name}"
    message = f"the API server refused to {verb} {what}: {api_message}"
    return Refusal(kind, REFUSED_REASON.get(kind, f"{kind}Refused"), message)


def conflict(kind: str, name: str, detail: str = "") -> Refusal:
    message = f"{kind} {name} exists and is not owned by this WorkerCluster; left alone"
    return Refusal(kind, CONFLICT_REASON[kind], f"{message} ({detail})" if detail else message)


def condition_cause(condition: dict[str, Any]) -> str | None:
    """The cause a Degraded=True condition states (None when not degraded): refusals by reason
    and message shape, pod troubles by reason alone (a crash loop's restart count is news for
    the condition, not a new cause)."""
    if condition.get("status") != "True":
        return None
    reason = str(condition.get("reason", ""))
    if reason in REFUSAL_REASONS:
        return cause_key(reason, str(condition.get("message", "")))
    return reason


def with_refusals(
    cluster: WorkerCluster, status: dict[str, Any], refusals: list[Refusal], now: datetime
) -> dict[str, Any]:
    """The status when writes were refused: Degraded, with the first refusal's reason and
    message (pods first, then Service, Ingress, NetworkPolicy: the order they are written).
    While the cause stays the same the condition keeps its message, so a retry that meets the
    same refusal writes nothing (a quota's "used" figures do not make it a new cause)."""
    if not refusals:
        return status
    first = refusals[0]
    prior = conditions_by_type({"status": cluster.status})
    before = prior.get(ConditionType.DEGRADED, {})
    message = first.message
    if condition_cause(before) == first.cause and before.get("reason") == first.reason:
        message = str(before.get("message", message))
    degraded = _condition(
        prior, ConditionType.DEGRADED, "True", first.reason, message, now, cluster.generation
    )
    conditions = [c for c in status["conditions"] if c["type"] != ConditionType.DEGRADED] + [
        degraded
    ]
    phase = status["phase"] if status["phase"] == Phase.PAUSED else Phase.DEGRADED
    return {**status, "conditions": conditions, "phase": phase}


def status_patch(
    old: dict[str, Any], new: dict[str, Any], *, top_level: bool = True
) -> dict[str, Any] | None:
    """A JSON merge patch turning `old` into `new`; None when nothing differs (no write).

    Merge patches keep keys they do not mention, so keys that disappeared from a nested object
    (e.g. failureBackoff.lastReplacementTime) are sent as null. Top-level keys we do not write
    are left alone. Lists (conditions, pods) are replaced whole, as merge patch does anyway.
    """
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            nested = status_patch(before, value, top_level=False)
            if nested is not None:
                patch[key] = nested
        elif before != value:
            patch[key] = value
    if not top_level:
        patch.update({key: None for key in old.keys() - new.keys()})
    return patch or None
