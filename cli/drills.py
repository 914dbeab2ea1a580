"""`workerlab chaos`: the failure drills, each ending in "who healed it?" with the evidence.

Every wait is bounded (poll interval x timeout); a drill that does not heal in time is reported
as not healed (exit code 1), never waited on forever.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from workerlab.api.objects import epoch, worker_port
from workerlab.api.processes import ProcessesReport
from workerlab.cli.healing import PodSnapshot, Verdict, pod_heal, process_heal
from workerlab.common.errors import MissingPrerequisite, WorkerlabError
from workerlab.common.kube import Kube
from workerlab.common.views import pod_row

POLL_S = 0.5


@dataclass
class DrillResult:
    target: str  # pod name, or pod/pid
    action: str
    healed_by: str | None
    detail: str
    seconds: float
    evidence: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def snapshot(kube: Kube, pod: dict, port: int | None) -> PodSnapshot:
    row = pod_row(pod)
    pids: frozenset[int] = frozenset()
    if port is not None and row.phase == "Running" and not row.terminating:
        try:
            report = kube.proxy_get(row.name, port, "/processes", timeout=5)
            pids = frozenset(p.pid for p in ProcessesReport.from_dict(report).alive)
        except WorkerlabError:
            pass  # mid-restart: no answer yet
    ready = row.ready and not row.terminating
    return PodSnapshot(row.name, pod["metadata"].get("uid", ""), row.restarts, ready, pids)


def _ready_pods(kube: Kube, name: str) -> list[dict]:
    pods = [p for p in kube.pods_of(name) if pod_row(p).ready and not pod_row(p).terminating]
    if not pods:
        raise MissingPrerequisite(
            f"wc/{name} has no Ready pod to break",
            hint=f"workerlab status {name}",
        )
    return pods


def recent_events(kube: Kube, name: str, since: float) -> list[str]:
    lines = []
    for event in kube.events_for("WorkerCluster", name):
        stamp = event.get("lastTimestamp") or event.get("eventTime") or ""
        if (epoch(stamp) or 0) >= since - 1:
            lines.append(f"Event {event.get('reason')}: {event.get('message', '').strip()}")
    return lines[-10:]


def kill_processes(kube: Kube, name: str, count: int, timeout_s: float) -> list[DrillResult]:
    wc = kube.worker_cluster(name)
    port = worker_port(wc)
    lab_mode = bool((wc.get("spec") or {}).get("labMode"))
    results = []
    for i in range(count):
        pods = _ready_pods(kube, name)
        pod = pods[i % len(pods)]
        before = snapshot(kube, pod, port)
        started = time.monotonic()
        killed, how = crash_process(kube, before, port, lab_mode)
        verdict = _wait(
            lambda b=before, k=killed: process_heal(
                b, [snapshot(kube, p, port) for p in kube.pods_of(name)], k
            ),
            timeout_s,
        )
        results.append(
            DrillResult(
                target=f"{before.name}/{killed}",
                action=how,
                healed_by=verdict.layer,
                detail=verdict.detail,
                seconds=round(time.monotonic() - started, 1),
                evidence=[verdict.detail],
            )
        )
    return results


def crash_process(kube: Kube, before: PodSnapshot, port: int, lab_mode: bool) -> tuple[int, str]:
    """Kill one worker process of a pod, without waiting: (the killed pid, how it was done).
    POST /crash in lab mode, else SIGKILL to the lowest live pid through `kubectl exec`."""
    if lab_mode:
        answer = kube.proxy_post(before.name, port, "/crash")
        killed = int(answer["pid"])
        return killed, f"POST /crash answered by pid {killed}"
    if not before.alive_pids:
        raise WorkerlabError(f"pod {before.name} reported no live processes")
    killed = min(before.alive_pids)
    kube.run(
        "exec",
        before.name,
        "--",
        "python",
        "-c",
        f"import os, signal; os.kill({killed}, signal.SIGKILL)",
    )
    return killed, f"SIGKILL to pid {killed} (kubectl exec; labMode is off)"


def delete_pods(kube: Kube, names: list[str]) -> None:
    """Delete pods without waiting for them to go (the operator's healing is the point)."""
    kube.run("delete", "pod", *names, "--wait=false")


def kill_pods(kube: Kube, name: str, count: int, timeout_s: float) -> DrillResult:
    wc = kube.worker_cluster(name)
    desired = int((wc.get("spec") or {}).get("replicas", 0))
    pods = _ready_pods(kube, name)
    before = [snapshot(kube, p, None) for p in kube.pods_of(name)]
    victims = [snapshot(kube, p, None) for p in pods[:count]]
    since, started = time.time(), time.monotonic()
    delete_pods(kube, [v.name for v in victims])
    verdict = _wait(
        lambda: pod_heal(
            victims,
            {b.uid for b in before},
            [snapshot(kube, p, None) for p in kube.pods_of(name)],
            desired,
        ),
        timeout_s,
    )
    return DrillResult(
        target=", ".join(v.name for v in victims),
        action=f"deleted {len(victims)} pod(s)",
        healed_by=verdict.layer,
        detail=verdict.detail,
        seconds=round(time.monotonic() - started, 1),
        evidence=recent_events(kube, name, since),
    )


def _wait(judge, timeout_s: float) -> Verdict:
    deadline = time.monotonic() + timeout_s
    verdict = Verdict(None, "not checked yet")
    while time.monotonic() < deadline:
        try:
            verdict = judge()
        except WorkerlabError as error:  # a pod vanishing between two reads: try again
            verdict = Verdict(None, str(error))
        if verdict.layer is not None:
            return verdict
        time.sleep(POLL_S)
    return Verdict(None, f"not healed within {timeout_s:.0f}s: {verdict.detail}")
