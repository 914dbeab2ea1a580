"""Which Events the operator posts, and what they say. Pure: the controller only sends them.

Kept apart from the I/O shell so the choice of reason and message per action and per status
transition is unit-tested like the rest of the core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from workerlab.api.objects import conditions_by_type, scaled_message
from workerlab.api.resource import ConditionType, Reason
from workerlab.operator.reconcile import CreatePod, DeletePod, Plan

EventType = Literal["Normal", "Warning"]

DELETE_WHY = {
    "ScaleDown": "scale down",
    "RollingUpdate": "rolling update, outdated pod template",
    "ReplaceFailed": "pod failed, replacing it",
}


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: str
    message: str


def replacing_failed(result: Plan) -> bool:
    return any(d.reason == "ReplaceFailed" for d in result.deletes)


def pod_created(action: CreatePod, pod_name: str, replacing: bool) -> Event:
    """`replacing`: the same plan deleted a failed pod, so this creation replaces it."""
    if action.reason == "Replace" or replacing:
        return Event(
            "Normal",
            Reason.REPLACED_POD,
            f"Created pod {pod_name}: replacing a pod that was deleted or failed",
        )
    why = "rolling update" if action.reason == "RollingUpdate" else "scale up"
    return Event("Normal", Reason.CREATED_POD, f"Created pod {pod_name}: {why}")


def pod_deleted(action: DeletePod) -> Event:
    return Event(
        "Normal", Reason.DELETED_POD, f"Deleted pod {action.name}: {DELETE_WHY[action.reason]}"
    )


def pod_create_failed(message: str) -> Event:
    # e.g. rejected by Pod Security admission or a quota: said where users look.
    return Event("Warning", Reason.FAILED_CREATE, f"Creating a pod failed: {message}")


def scaled(result: Plan, replicas: int) -> Event | None:
    scaled_up = any(a.reason == "ScaleUp" for a in result.creates)
    if not scaled_up and not any(a.reason == "ScaleDown" for a in result.deletes):
        return None
    direction = "up" if result.creates else "down"
    return Event("Normal", Reason.SCALED, scaled_message(direction, replicas))


def transitions(old: dict[str, Any], new: dict[str, Any]) -> list[Event]:
    """Events for condition changes between two `status` values (none when nothing changed)."""
    before = conditions_by_type({"status": old})
    after = conditions_by_type({"status": new})
    events: list[Event] = []
    degraded = after.get(ConditionType.DEGRADED, {})
    was = before.get(ConditionType.DEGRADED, {})
    was_degraded = was.get("status") == "True"
    if (
        degraded.get("status") == "True"
        and degraded.get("reason") != Reason.FAILED_CREATE  # its own Event was just posted
        and (not was_degraded or was.get("reason") != degraded.get("reason"))
    ):
        events.append(Event("Warning", str(degraded["reason"]), str(degraded.get("message", ""))))
    elif was_degraded and degraded.get("status") == "False":
        events.append(Event("Normal", Reason.RECOVERED, "No pod is failing any more"))
    ready = after.get(ConditionType.READY, {})
    if (
        ready.get("status") == "True"
        and before.get(ConditionType.READY, {}).get("status") != "True"
    ):
        events.append(Event("Normal", Reason.READY, str(ready.get("message", ""))))
    progressing = after.get(ConditionType.PROGRESSING, {})
    was_paused = before.get(ConditionType.PROGRESSING, {}).get("reason") == Reason.PAUSED
    if progressing.get("reason") == Reason.PAUSED and not was_paused:
        events.append(Event("Normal", Reason.PAUSED, "Pod management paused (spec.paused)"))
    return events
