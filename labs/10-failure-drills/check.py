"""Lab 10: the control plane fails, the data plane keeps serving, and the master converges after.

Evidence: the operator pod and the API server container both (re)started during the lab, a load
run spanning both outages had no failed request, and wc/demo reached the scale asked for while
the operator was down.
"""

from __future__ import annotations

from workerlab.api.objects import created_at, epoch
from workerlab.api.resource import LABEL_NAME, OPERATOR_DEPLOYMENT, OPERATOR_NAMESPACE
from workerlab.common.kube import Kube
from workerlab.common.wcstate import converged
from workerlab.labs.checking import CheckContext, Checker, Item, counts, item
from workerlab.labs.starting_state import DEMO, demo_runs, reset_demo

REPLICAS = 4
APISERVER_SELECTOR = "component=kube-apiserver"


def _started(pod: dict) -> float | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        running = (status.get("state") or {}).get("running") or {}
        if running.get("startedAt"):
            return epoch(running["startedAt"])
    return None


def gather(ctx: CheckContext) -> dict:
    kube = ctx.kube
    system = Kube(kube.context, OPERATOR_NAMESPACE, kube.kubectl)
    deployment = system.get("deployment", OPERATOR_DEPLOYMENT) or {}
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    operator_pods = system.list("pods", selector) if selector else []
    kube_system = Kube(kube.context, "kube-system", kube.kubectl)
    apiservers = kube_system.list("pods", APISERVER_SELECTOR)
    return {
        "started_at": ctx.started_at,
        "demo": kube.worker_cluster(DEMO),
        "operator_started": [created_at(p) for p in operator_pods],
        "apiserver_started": [_started(p) for p in apiservers],
        "runs": ctx.runs(),
    }


def evaluate(facts: dict) -> list[Item]:
    started = facts["started_at"]
    if started is None:
        return [
            item(
                "the drill was started with `workerlab lab reset 10`",
                False,
                "",
                "run: workerlab lab reset 10, then the steps",
            )
        ]
    op = [t for t in facts["operator_started"] if t and t > started]
    api = [t for t in facts["apiserver_started"] if t and t > started]
    items = [
        item(
            "the operator was killed mid-scale and its Deployment replaced it",
            op,
            f"the operator pod running now started {min(op) - started:.0f}s into the drill"
            if op
            else "the operator pod running now is older than the drill",
            f"kubectl -n {OPERATOR_NAMESPACE} delete pod -l {LABEL_NAME}="
            f"{OPERATOR_DEPLOYMENT} --wait=false  (right after kubectl scale)",
        ),
        item(
            "the API server was cut and came back",
            api,
            f"its container started {min(api) - started:.0f}s into the drill"
            if api
            else "its container is older than the drill",
            "move the static pod manifest away and back (see the steps)",
        ),
    ]
    outages = op + api
    spanning = [
        r
        for r in demo_runs(facts["runs"])
        if outages
        and r.get("started_at", 0) <= min(outages)
        and r.get("ended_at", 0) >= max(outages)
    ]
    items.append(
        item(
            "a load run kept going through both outages",
            spanning,
            f"{len(spanning)} run(s)",
            "start the background load (--duration 150) before the drill, and `wait` for it",
        )
    )
    if spanning:
        summary = spanning[-1]["summary"]
        items.append(
            item(
                "the data plane kept serving: zero failed requests",
                summary["errors"] == 0 and summary["ok"] > 0,
                f"{summary['ok']} ok, {summary['errors']} failed"
                + (
                    f" ({counts(summary['errors_by_kind'])})"
                    if summary.get("errors_by_kind")
                    else ""
                ),
                "failures while only the control plane is down point at pods restarting: "
                "did a liveness probe or the kubelet restart them? workerlab status demo",
            )
        )
    demo = facts["demo"]
    done, why = converged(demo)
    replicas = (demo.get("spec") or {}).get("replicas")
    items.append(
        item(
            f"afterwards the operator converged to {REPLICAS} pods",
            done and replicas == REPLICAS,
            f"replicas={replicas}; {why}",
            "workerlab status demo --wait 180; if it never converges, read the operator's logs",
        )
    )
    return items


def reset(ctx: CheckContext) -> list[str]:
    return [reset_demo(ctx.kube)]


CHECKER = Checker(gather, evaluate, reset)
