"""Lab 7: a rolling update under load with zero failed requests (HUP <-> rolling update)."""

from __future__ import annotations

from workerlab.api.objects import created_at, env_value
from workerlab.cli.status_view import pod_row
from workerlab.cli.wcstate import converged
from workerlab.labs.checking import CheckContext, Checker, Item, counts, item, listing
from workerlab.labs.starting_state import DEMO, demo_runs, reset_demo

ENV_NAME, ENV_VALUE = "ROLLOUT", "v2"


def gather(ctx: CheckContext) -> dict:
    demo = ctx.kube.worker_cluster(DEMO)
    pods = [p for p in ctx.kube.pods_of(DEMO) if not pod_row(p).terminating]
    return {"started_at": ctx.started_at, "demo": demo, "pods": pods, "runs": ctx.runs()}


def evaluate(facts: dict) -> list[Item]:
    demo, pods = facts["demo"], facts["pods"]
    items = [
        item(
            f"changed the pod template: env {ENV_NAME}={ENV_VALUE}",
            env_value(demo, ENV_NAME) == ENV_VALUE,
            f"{ENV_NAME}={env_value(demo, ENV_NAME)}"
            if env_value(demo, ENV_NAME) is not None
            else f"{ENV_NAME} not set",
            "kubectl -n workerlab patch wc demo --type merge "
            f'-p \'{{"spec":{{"env":[{{"name":"{ENV_NAME}","value":"{ENV_VALUE}"}}]}}}}\'',
        )
    ]
    done, why = converged(demo)
    hashes = {pod_row(p).template_hash for p in pods}
    items.append(
        item(
            "the rollout finished: every pod runs the new template",
            done and len(hashes) == 1,
            f"{why}; template hashes: {listing(sorted(h or '-' for h in hashes))}",
            "workerlab status demo --wait 180",
        )
    )
    started = facts["started_at"] or 0
    rolled = sorted(created_at(p) or 0 for p in pods if (created_at(p) or 0) > started)
    covering = [
        r
        for r in demo_runs(facts["runs"])
        if rolled and r.get("started_at", 0) <= rolled[0] and r.get("ended_at", 0) >= rolled[-1]
    ]
    items.append(
        item(
            "a load run was going on during the whole rollout",
            covering,
            f"{len(rolled)} new pods; {len(covering)} run(s) spanned their creation",
            "start the load first (in the background, --duration 90), then patch, then `wait`",
        )
    )
    if covering:
        run = covering[-1]["summary"]
        items.append(
            item(
                "zero failed requests during the rollout",
                run["errors"] == 0 and run["ok"] > 0,
                f"{run['ok']} ok, {run['errors']} failed"
                + (f" ({counts(run['errors_by_kind'])})" if run.get("errors_by_kind") else ""),
                "failed requests mean a pod stopped serving before it left the Service: read "
                "the readiness probe, preStop and GRACEFUL_TIMEOUT in the lab text",
            )
        )
    return items


def reset(ctx: CheckContext) -> list[str]:
    return [reset_demo(ctx.kube)]


CHECKER = Checker(gather, evaluate, reset)
