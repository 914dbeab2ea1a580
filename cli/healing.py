"""Who healed it? Pure judgements from before/after snapshots of a pod and its processes.

The three layers of the lab each leave a different fingerprint:
  arbiter  the pod and its container restart count are unchanged, the killed pid is gone and a
           new pid serves in its slot (gunicorn forked a replacement);
  kubelet  the pod is the same but its container restart count went up (the container died and
           was restarted in place: liveness probe, OOM kill, or the whole arbiter exiting);
  operator the pod itself is gone and a new pod (new name) is Ready in its place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ARBITER, KUBELET, OPERATOR = "arbiter", "kubelet", "operator"


@dataclass(frozen=True)
class PodSnapshot:
    name: str
    uid: str
    restarts: int
    ready: bool
    alive_pids: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Verdict:
    layer: str | None  # None: not healed (yet)
    detail: str


def process_heal(before: PodSnapshot, after: list[PodSnapshot], killed_pid: int) -> Verdict:
    same = next((p for p in after if p.uid == before.uid), None)
    if same is None:
        fresh = [p for p in after if p.ready and p.name != before.name]
        if fresh:
            return Verdict(OPERATOR, f"pod {before.name} was replaced by {fresh[0].name}")
        return Verdict(None, f"pod {before.name} is gone and no replacement is Ready yet")
    if same.restarts > before.restarts:
        if not same.ready:
            return Verdict(None, "the container restarted and is not Ready yet")
        return Verdict(
            KUBELET,
            f"container restarted in place: restartCount {before.restarts} -> {same.restarts}",
        )
    new_pids = same.alive_pids - before.alive_pids
    if (
        killed_pid not in same.alive_pids
        and new_pids
        and len(same.alive_pids) >= len(before.alive_pids)
    ):
        return Verdict(
            ARBITER,
            f"pid {killed_pid} exited, new pid {min(new_pids)} forked; restartCount "
            f"unchanged ({same.restarts})",
        )
    if killed_pid in same.alive_pids:
        return Verdict(None, f"pid {killed_pid} is still alive")
    return Verdict(None, f"pid {killed_pid} exited, no replacement process yet")


def pod_heal(
    deleted: list[PodSnapshot], before_uids: set[str], after: list[PodSnapshot], desired: int
) -> Verdict:
    """Healed once every deleted pod is gone and as many brand-new pods are Ready."""
    deleted_uids = {p.uid for p in deleted}
    lingering = [p.name for p in after if p.uid in deleted_uids and p.ready]
    ready = [p for p in after if p.ready and p.uid not in deleted_uids]
    replacements = sorted(p.name for p in ready if p.uid not in before_uids)
    if len(replacements) >= len(deleted) and len(ready) >= desired and not lingering:
        return Verdict(OPERATOR, f"new pods Ready: {', '.join(replacements)}")
    return Verdict(None, f"{len(ready)}/{desired} pods Ready, {len(replacements)} new")
