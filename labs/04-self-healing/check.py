"""Lab 4: who healed it? The operator replaced deleted pods, the arbiter a crashed process, and a
crash-looping WorkerCluster reports Degraded instead of being recreated in a tight loop."""

from __future__ import annotations

from workerlab.api.objects import created_at, epoch, event_time, find_condition, worker_port
from workerlab.api.processes import ProcessesReport
from workerlab.api.resource import KIND, LABEL_INSTANCE, RESOURCE, ConditionType, Reason
from workerlab.common.errors import WorkerlabError
from workerlab.common.views import pod_row
from workerlab.common.wcstate import converged
from workerlab.labs.checking import CheckContext, Checker, Evidence, Item, item
from workerlab.labs.starting_state import DEMO, delete_wc, reset_demo

CRASHY = "crashy"


def gather(ctx: CheckContext) -> dict:
    kube = ctx.kube
    demo = kube.worker_cluster(DEMO)
    pods = kube.pods_of(DEMO)
    processes = {}
    for pod in pods:
        row = pod_row(pod)
        if row.ready and not row.terminating:
            try:
                processes[row.name] = kube.proxy_get(row.name, worker_port(demo), "/processes")
            except WorkerlabError:
                processes[row.name] = None
    crashy = kube.get(RESOURCE, CRASHY)
    return {
        "started_at": ctx.started_at,
        "demo": demo,
        "pods": pods,
        "processes": processes,
        "events": kube.events_for("WorkerCluster", DEMO),
        "crashy": crashy,
        "crashy_pods": kube.pods_of(CRASHY) if crashy else [],
        "crashy_events": kube.events_for("WorkerCluster", CRASHY) if crashy else [],
    }


def evaluate(facts: dict) -> list[Item]:
    started = facts["started_at"]
    items = [
        item(
            "the lab was started with `workerlab lab reset 4`",
            started is not None,
            "",
            "run: workerlab lab reset 4 (it records when the drill began), then the steps",
        )
    ]
    if started is None:
        return items
    pods = facts["pods"]
    new = [p["metadata"]["name"] for p in pods if (created_at(p) or 0) > started]
    items.append(
        item(
            "who healed the deleted pod? the operator created a replacement",
            new,
            f"pods created during the lab: {', '.join(new)}",
            "workerlab chaos kill-pod wc/demo  (or kubectl -n workerlab delete pod <a demo pod>)",
        )
    )
    replaced = [
        e
        for e in facts["events"]
        if e.get("reason") == Reason.REPLACED_POD and (epoch(event_time(e)) or 0) >= started - 1
    ]
    items.append(
        item(
            f"the operator's Events confirm it ({Reason.REPLACED_POD})",
            replaced,
            "; ".join(e.get("message", "") for e in replaced[-2:]),
            "kubectl -n workerlab get events --field-selector involvedObject.name=demo",
        )
    )
    done, why = converged(facts["demo"])
    items.append(
        item("wc/demo is back to full strength", done, why, "workerlab status demo --wait 120")
    )
    healed = []
    for pod in pods:
        report = ProcessesReport.from_dict(facts["processes"].get(pod["metadata"]["name"]) or {})
        dead = [r for r in report.processes if not r.alive]
        if dead and pod_row(pod).restarts == 0:
            healed.append(f"{pod['metadata']['name']}: pid {dead[0].pid} replaced, 0 restarts")
    items.append(
        item(
            "who healed the crashed process? the arbiter (pod kept, restartCount 0)",
            healed,
            "; ".join(healed),
            "after replacing the pods, run: workerlab chaos kill-process wc/demo",
        )
    )
    crashy = facts["crashy"]
    items.append(
        item(
            f"a crash-looping WorkerCluster {CRASHY!r} exists",
            crashy is not None,
            "",
            "apply the crashy manifest from the steps (it sets an invalid REDIS_URL)",
        )
    )
    if crashy is None:
        return items
    degraded = find_condition(crashy, ConditionType.DEGRADED) or {}
    since = [
        e for e in facts.get("crashy_events") or [] if (epoch(event_time(e)) or 0) >= started - 1
    ]
    warned = [e for e in since if e.get("type") == "Warning"]
    if degraded.get("status") != "True" and warned:
        # Question 3 fixed it: the crash loop is over, and its evidence is in the Events.
        recovered = [e for e in since if e.get("reason") == Reason.RECOVERED]
        items.append(
            item(
                "it crash-looped and the operator reported it (a Warning Event, Degraded=True)",
                True,
                f"{warned[-1].get('reason')}: {warned[-1].get('message')}",
            )
        )
        items.append(
            item(
                "... and you fixed it: Degraded is False again",
                True,
                f"{degraded.get('reason')}: {degraded.get('message')}"
                + (f"; Event {Reason.RECOVERED}" if recovered else ""),
            )
        )
        return items
    restarts = sum(pod_row(p).restarts for p in facts["crashy_pods"])
    items.append(
        item(
            "the kubelet keeps restarting its container (restartCount > 0)",
            restarts > 0,
            f"{restarts} restarts",
            f"wait ~30 s: kubectl -n workerlab get pods -l {LABEL_INSTANCE}={CRASHY} -w",
        )
    )
    items.append(
        item(
            "the operator reports it: condition Degraded=True, with the reason",
            degraded.get("status") == "True",
            f"{degraded.get('reason')}: {degraded.get('message')}"
            if degraded
            else "no Degraded condition",
            f"kubectl -n workerlab wait --for=condition=Degraded wc/{CRASHY} --timeout=120s",
        )
    )
    return items


def reset(ctx: CheckContext) -> list[str]:
    done = [delete_wc(ctx.kube, CRASHY) or f"wc/{CRASHY} did not exist"]
    done.append(reset_demo(ctx.kube))
    return done


def _said(events: list[dict]) -> str:
    return "; ".join(f"{e.get('reason')}: {e.get('message', '')}" for e in events[-2:])


def audit(evidence: Evidence) -> list[Item]:
    """The pass from the Events kept: the operator's replacement, the arbiter's re-fork as the
    operator saw it in /processes, and the crash loop's Warning on wc/crashy."""
    replaced = evidence.of(KIND, DEMO, Reason.REPLACED_POD)
    reforked = evidence.of(KIND, DEMO, Reason.PROCESS_REPLACED)
    warned = [e for e in evidence.of(KIND, CRASHY) if e.get("type") == "Warning"]
    return [
        item("the operator replaced a deleted pod", replaced, _said(replaced)),
        item("an arbiter re-forked a crashed process", reforked, _said(reforked)),
        item(f"wc/{CRASHY} crash-looped and the operator said so", warned, _said(warned)),
    ]


CHECKER = Checker(gather, evaluate, reset, audit)
