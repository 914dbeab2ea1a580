"""The "who acted" timeline's vocabulary: an entry, the levels that act, and how a Kubernetes
Event becomes an entry. Pure; the model (model.py) decides when.

Who acted, truthfully:
  operator  the master one level up: its Events on a WorkerCluster, and a heal only when it
            said the new pod replaces one (ReplacedPod), never for a rollout or scale step;
            a change in place (ChangedInPlace: "processes 2→4, no restart") on the pod's lane;
  arbiter   the pod's own master re-forked a dead process (seen in /processes by the page, or
            told by the operator's ProcessReplaced Event: whichever comes first, once);
  kubelet   a container restarted in place, or the kubelet's Warning about a pod (BackOff,
            Unhealthy, ...);
  cluster   the API server lost or back, another controller's Warning (the scheduler's, ...);
  you       what the learner did from the page.
Every Warning Event on a WorkerCluster or its pods is an entry, whatever its reason, marked
as a warning.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from workerlab.api.objects import changed_in_place, event_time, pod_action, process_replaced
from workerlab.api.resource import KIND, Reason

OPERATOR, KUBELET, ARBITER, YOU, CLUSTER = "operator", "kubelet", "arbiter", "you", "cluster"


@dataclass
class Entry:
    seq: int
    at: float  # epoch seconds: when it happened (healed), as best known
    level: str  # operator | kubelet | arbiter | you | cluster
    wc: str | None
    pod: str | None
    message: str
    reason: str | None = None
    heal_s: float | None = None  # fault -> healed, where known
    warning: bool = False  # a Warning Event: something went wrong, said by whoever saw it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EventFacts:
    """What one Kubernetes Event says, for the timeline."""

    level: str
    wc: str | None
    pod: str | None
    reason: str
    message: str
    warning: bool
    acted_on: tuple[str, str, str] | None = None  # (verb, pod, why) of an operator pod action
    reforked: tuple[str, int] | None = None  # (pod, dead pid) of a ProcessReplaced


def read_event(obj: dict[str, Any], pod_owner: dict[str, str | None]) -> EventFacts | None:
    """The Event as a timeline fact; None when it is about nothing this page shows (Normal
    Events of pods are the kubelet's routine: Scheduled, Pulled, Started ...).

    `pod_owner`: the pods the page knows, by name, with their WorkerCluster."""
    involved = obj.get("involvedObject") or {}
    kind, name = involved.get("kind"), str(involved.get("name") or "")
    reason = str(obj.get("reason") or "")
    message = str(obj.get("message") or "").strip()
    warning = obj.get("type") == "Warning"
    if kind == KIND:
        if reason == Reason.PROCESS_REPLACED and (seen := process_replaced(message)):
            return EventFacts(ARBITER, name, seen[0], reason, message, warning, reforked=seen)
        if reason == Reason.CHANGED_IN_PLACE and (changed := changed_in_place(message)):
            # The operator told the pod's arbiter (and kubelet): same pod, its lane goes on.
            return EventFacts(OPERATOR, name, changed[0], reason, message, warning)
        action = pod_action(message)
        pod = action[1] if action else None
        return EventFacts(OPERATOR, name, pod, reason, message, warning, acted_on=action)
    if kind == "Pod" and warning and name in pod_owner:
        source = ((obj.get("source") or {}).get("component")) or obj.get("reportingComponent")
        level = KUBELET if source == "kubelet" else CLUSTER
        return EventFacts(level, pod_owner[name], name, reason, message, warning)
    return None


def event_key(obj: dict[str, Any]) -> tuple[Any, ...]:
    """Tells a new occurrence of an Event (its count went up) from the same one listed again."""
    return (obj.get("count"), event_time(obj))
