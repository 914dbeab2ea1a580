"""Lab 5: two knobs, two levels: `kubectl scale` (pods: the operator forks) and processesPerPod
(processes: each arbiter forks, in place); a change no running pod can take (env) rolls the pods
for contrast; a load run shows work reaching every pod and every process.

The in-place change and the roll are over once the learner checks: they are judged from the
Events the operator wrote since the lab began (ChangedInPlace, RollingUpdate)."""

from __future__ import annotations

import time

from workerlab.api.objects import (
    ROLLING_UPDATE,
    changed_in_place,
    created_at,
    pod_action,
    scaled_message,
    worker_port,
)
from workerlab.api.processes import alive_count
from workerlab.api.resource import KIND, Reason
from workerlab.common.errors import WorkerlabError
from workerlab.common.views import pod_row
from workerlab.common.wcstate import converged
from workerlab.labs.checking import (
    CheckContext,
    Checker,
    Evidence,
    Item,
    counts,
    gather_evidence,
    item,
)
from workerlab.labs.starting_state import DEMO, demo_runs, reset_demo

REPLICAS, PROCESSES = 3, 3


def gather(ctx: CheckContext) -> dict:
    kube = ctx.kube
    demo = kube.worker_cluster(DEMO)
    pods = [p for p in kube.pods_of(DEMO) if not pod_row(p).terminating]
    alive: dict[str, int | None] = {}
    for pod in pods:
        try:
            report = kube.proxy_get(pod["metadata"]["name"], worker_port(demo), "/processes")
            alive[pod["metadata"]["name"]] = alive_count(report)
        except (WorkerlabError, KeyError):
            alive[pod["metadata"]["name"]] = None
    # The Events since the lab began: the in-place change and the roll are over by now.
    since = ctx.started_at or 0.0
    events = gather_evidence(kube, since, time.time(), []).events
    return {"demo": demo, "pods": pods, "alive": alive, "runs": ctx.runs(), "events": events}


def evaluate(facts: dict) -> list[Item]:
    spec = facts["demo"].get("spec") or {}
    items = [
        item(
            f"scaled the pods: spec.replicas = {REPLICAS}",
            spec.get("replicas") == REPLICAS,
            "" if spec.get("replicas") == REPLICAS else f"spec.replicas is {spec.get('replicas')}",
            f"kubectl -n workerlab scale wc/demo --replicas={REPLICAS}",
        ),
        item(
            f"scaled the processes: spec.processesPerPod = {PROCESSES}",
            spec.get("processesPerPod") == PROCESSES,
            ""
            if spec.get("processesPerPod") == PROCESSES
            else f"spec.processesPerPod is {spec.get('processesPerPod')}",
            "kubectl -n workerlab patch wc demo --type merge "
            f'-p \'{{"spec":{{"processesPerPod":{PROCESSES}}}}}\'',
        ),
    ]
    done, why = converged(facts["demo"])
    items.append(item("the operator converged", done, why, "workerlab status demo --wait 180"))
    alive = facts["alive"]
    items.append(
        item(
            f"every pod's arbiter runs {PROCESSES} processes",
            alive and all(c == PROCESSES for c in alive.values()),
            ", ".join(f"{k}: {v}" for k, v in alive.items()),
            "workerlab status demo  (a pod with fewer processes is still starting)",
        )
    )
    names = {p["metadata"]["name"] for p in facts["pods"]}
    evidence = Evidence(0.0, 0.0, facts["events"], [])
    items += _in_place_then_rolled(evidence, names)
    newest = max((created_at(p) or 0 for p in facts["pods"]), default=0)
    after = [r for r in demo_runs(facts["runs"]) if r.get("started_at", 0) >= newest]
    return items + _spread(after, names)


def _in_place_then_rolled(evidence: Evidence, now_running: set[str] | None) -> list[Item]:
    """The running pods took the new count in place (ChangedInPlace, 2+ pods: the reset's),
    then a change no running process can take rolled them (RollingUpdate; the pods running now,
    when known, are new ones)."""
    told = {
        changed[0]
        for e in evidence.of(KIND, DEMO, Reason.CHANGED_IN_PLACE)
        if (changed := changed_in_place(str(e.get("message", ""))))
        and f"processes 2→{PROCESSES}" in changed[1]
    }
    rolls = evidence.of(KIND, DEMO, Reason.ROLLING_UPDATE)
    items = [
        item(
            f"processesPerPod in place: running pods took {PROCESSES} processes, no restart",
            len(told) >= 2,
            f"changed in place: {', '.join(sorted(told)) or 'no pod'}",
            "patch processesPerPod after the scale, while the pods run (`workerlab lab reset 5` "
            "to start over); `kubectl -n workerlab get events --field-selector "
            "involvedObject.name=demo` lists ChangedInPlace",
        )
    ]
    new = now_running is None or not (now_running & told)
    items.append(
        item(
            "a change no running pod can take (env) rolled them: new pods",
            bool(rolls) and new,
            str(rolls[-1].get("message", "")) if rolls else "no rolling update since the reset",
            "kubectl -n workerlab patch wc demo --type merge "
            '-p \'{"spec":{"env":[{"name":"LAB5","value":"rolled"}]}}\'',
        )
    )
    return items


def _spread(runs: list[dict], names: set[str]) -> list[Item]:
    """The widest run reached every pod in `names`, and two or more processes in each."""
    best = max(
        runs, key=lambda r: len((r.get("summary") or {}).get("by_process", {})), default=None
    )
    summary = (best or {}).get("summary") or {}
    per_pod: dict[str, int] = {}
    for key in summary.get("by_process", {}):
        pod = key.rsplit("/", 1)[0]
        per_pod[pod] = per_pod.get(pod, 0) + 1
    items = []
    items.append(
        item(
            "a load run after the scale reached every pod",
            best is not None and names <= set(summary.get("by_pod", {})),
            f"requests per pod: {counts(summary.get('by_pod') or {})}"
            if best
            else "no run after the scale",
            "workerlab load wc/demo --path '/work/cpu?ms=20' --requests 300 --concurrency 12 "
            "--no-keepalive",
        )
    )
    items.append(
        item(
            "... and more than one process in every pod",
            best is not None and names and all(per_pod.get(n, 0) >= 2 for n in names),
            f"processes hit per pod: {counts(per_pod)}",
            "use CPU work (/work/cpu?ms=20) and --concurrency above the pod count: a busy "
            "process stops accepting, so its siblings take the next connections",
        )
    )
    return items


def reset(ctx: CheckContext) -> list[str]:
    return [reset_demo(ctx.kube)]


def audit(evidence: Evidence) -> list[Item]:
    """The pass from the Events kept: the operator scaled demo to 3 pods and rolled them for the
    new process count; a recorded run reached the pods it created, 2+ processes in each."""
    scaled = [
        e
        for e in evidence.of(KIND, DEMO, Reason.SCALED)
        if e.get("message") == scaled_message("up", REPLICAS)
    ]
    created = [
        action
        for e in evidence.of(KIND, DEMO)
        if e.get("reason") in (Reason.CREATED_POD, Reason.REPLACED_POD)
        and (action := pod_action(str(e.get("message", ""))))
    ]
    rolled = [pod for _, pod, why in created if why == ROLLING_UPDATE]
    made = {pod for _, pod, _ in created}
    items = [
        item(
            f"the operator scaled demo up to {REPLICAS} pods",
            scaled,
            scaled_message("up", REPLICAS),
        ),
        item(
            "... and rolled its pods for a change no running pod can take",
            rolled,
            f"{len(rolled)} pods created by the rolling update",
        ),
        *_in_place_then_rolled(evidence, None),
    ]
    # The pods a run reached must be ones the operator created in the lab (the new template's),
    # at least as many as the scale asked for.
    runs = [r for r in demo_runs(evidence.runs) if _pods(r) and _pods(r) <= made]
    widest = max((_pods(r) for r in runs), key=len, default=set())
    items.append(
        item(
            f"a recorded load run reached {REPLICAS} pods the operator created in the lab",
            len(widest) >= REPLICAS,
            f"{len(runs)} recorded run(s) on those pods; the widest reached {len(widest)}",
        )
    )
    if len(widest) < REPLICAS:
        return items
    return items + _spread(runs, widest)[1:]  # its processes per pod


def _pods(run: dict) -> set[str]:
    return set((run.get("summary") or {}).get("by_pod") or {})


CHECKER = Checker(gather, evaluate, reset, audit)
