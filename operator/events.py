"""Which Events the operator posts, and what they say. Pure: the controller only sends them.

Kept apart from the I/O shell so the choice of reason and message per action and per status
transition is unit-tested like the rest of the core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from workerlab.api.objects import (
    ROLLING_UPDATE,
    SCALE_DOWN,
    SCALE_UP,
    changed_in_place_message,
    conditions_by_type,
    pod_action_message,
    process_replaced_message,
    scaled_message,
)
from workerlab.api.processes import PodReplacement
from workerlab.api.resource import ConditionType, Reason
from workerlab.operator.inplace import ChangeInPlace
from workerlab.operator.reconcile import CreatePod, DeletePod, Plan
from workerlab.operator.status import REFUSAL_REASONS, condition_cause

EventType = Literal["Normal", "Warning"]

DELETE_WHY = {
    "ScaleDown": SCALE_DOWN,
    "RollingUpdate": f"{ROLLING_UPDATE}, outdated pod template",
    "ReplaceFailed": "pod failed, replacing it",
    "NodeLost": "its node is lost",
}


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: str
    message: str
    name: str | None = None  # a fixed object name: posted once, whichever operator tells it


def replacing_failed(result: Plan) -> bool:
    return any(d.reason == "ReplaceFailed" for d in result.deletes)


def pod_created(action: CreatePod, pod_name: str, replacing: bool) -> Event:
    """`replacing`: the same plan deleted a failed pod, so this creation replaces it."""
    if action.replaces is not None:
        lost = action.replaces
        return Event(
            "Normal",
            Reason.REPLACED_POD,
            pod_action_message(
                "Created", pod_name, f"replacing pod {lost.name} of lost node {lost.node}"
            ),
        )
    if action.reason == "Replace" or replacing:
        return Event(
            "Normal",
            Reason.REPLACED_POD,
            pod_action_message("Created", pod_name, "replacing a pod that was deleted or failed"),
        )
    why = ROLLING_UPDATE if action.reason == "RollingUpdate" else SCALE_UP
    return Event("Normal", Reason.CREATED_POD, pod_action_message("Created", pod_name, why))


def pod_deleted(action: DeletePod) -> Event:
    why = DELETE_WHY[action.reason]
    if action.reason == "NodeLost":
        why = f"its node {action.node} is lost (deleted without grace: no kubelet to honour it)"
    return Event("Normal", Reason.DELETED_POD, pod_action_message("Deleted", action.name, why))


def changed_in_place(action: ChangeInPlace) -> Event:
    return Event(
        "Normal", Reason.CHANGED_IN_PLACE, changed_in_place_message(action.name, action.summary)
    )


def process_replaced(seen: PodReplacement) -> Event:
    """The pod's own master healed a process: say so with the arbiter as the one who acted."""
    dead, successor = seen.replacement.dead, seen.replacement.successor
    message = process_replaced_message(
        seen.pod, seen.arbiter_pid, dead.pid, dead.exit, successor.pid, dead.index
    )
    # One object per re-fork (pod names and pids are DNS-label safe): a standby taking over,
    # or a restarted operator, may see the same record again; the API server refuses the copy.
    name = f"{seen.pod}.processreplaced.{dead.pid}"
    return Event("Normal", Reason.PROCESS_REPLACED, message, name)


def scaled(result: Plan, replicas: int, created: int) -> Event | None:
    """`created`: how many of the plan's pods the API server accepted (none: nothing scaled, and
    a held or refused create is said by the Degraded condition, not by an Event per retry)."""
    scaled_up = any(a.reason == "ScaleUp" for a in result.creates) and created > 0
    if not scaled_up and not any(a.reason == "ScaleDown" for a in result.deletes):
        return None
    direction = "up" if result.creates else "down"
    return Event("Normal", Reason.SCALED, scaled_message(direction, replicas))


def recovered_message(was: dict[str, Any]) -> str:
    reason = str(was.get("reason", ""))
    if reason in REFUSAL_REASONS:
        return f"No longer degraded: {reason} is resolved"
    return "No pod is failing any more"


def transitions(old: dict[str, Any], new: dict[str, Any]) -> list[Event]:
    """Events for condition changes between two `status` values (none when nothing changed)."""
    before = conditions_by_type({"status": old})
    after = conditions_by_type({"status": new})
    events: list[Event] = []
    degraded = after.get(ConditionType.DEGRADED, {})
    was = before.get(ConditionType.DEGRADED, {})
    cause, was_cause = condition_cause(degraded), condition_cause(was)
    if cause is not None and cause != was_cause:
        # One Warning per change of cause, however often the reconcile meets it (a refused write
        # is retried with backoff and keeps the condition as it is: no Event, no write).
        events.append(Event("Warning", str(degraded["reason"]), str(degraded.get("message", ""))))
    elif was_cause is not None and degraded.get("status") == "False":
        events.append(Event("Normal", Reason.RECOVERED, recovered_message(was)))
    ready = after.get(ConditionType.READY, {})
    if (
        ready.get("status") == "True"
        and before.get(ConditionType.READY, {}).get("status") != "True"
    ):
        events.append(Event("Normal", Reason.READY, str(ready.get("message", ""))))
    events += node_transitions(old, new)
    progressing = after.get(ConditionType.PROGRESSING, {})
    was_paused = before.get(ConditionType.PROGRESSING, {}).get("reason") == Reason.PAUSED
    if progressing.get("reason") == Reason.PAUSED and not was_paused:
        events.append(Event("Normal", Reason.PAUSED, "Pod management paused (spec.paused)"))
    return events


def node_transitions(old: dict[str, Any], new: dict[str, Any]) -> list[Event]:
    """A Warning when a node with this cluster's pods is found lost, a Normal one once back."""
    before = {e.get("name"): e for e in old.get("lostNodes") or []}
    after = {e.get("name"): e for e in new.get("lostNodes") or []}
    events = [
        Event(
            "Warning",
            Reason.NODE_LOST,
            f"Node {name} is lost: no heartbeat since {entry.get('lastHeartbeatTime')} "
            "(spec.nodeLossTolerationSeconds); its pods are replaced on the other nodes",
        )
        for name, entry in sorted(after.items())
        if name not in before
    ]
    events += [
        Event(
            "Normal",
            Reason.NODE_RECOVERED,
            f"Node {name} answers again; its kubelet stops the pods that were replaced meanwhile",
        )
        for name in sorted(before)
        if name not in after
    ]
    return events
