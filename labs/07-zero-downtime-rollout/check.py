"""Lab 7: a rolling update under load with zero failed requests (HUP <-> rolling update)."""

from __future__ import annotations

from workerlab.api.objects import (
    ROLLING_UPDATE,
    created_at,
    env_value,
    epoch,
    event_time,
    pod_action,
)
from workerlab.api.resource import KIND, Reason
from workerlab.common.views import pod_row
from workerlab.common.wcstate import converged
from workerlab.labs.checking import (
    CheckContext,
    Checker,
    Evidence,
    Item,
    counts,
    item,
    listing,
)
from workerlab.labs.starting_state import DEMO, demo_runs, reset_demo

ENV_NAME, ENV_VALUE = "ROLLOUT", "v2"  # the steps' value; the questions roll on to v3, v4


def _keepalive(run: dict) -> bool:
    return bool(run.get("keepalive", True))


def ready_at(pod: dict) -> float | None:
    """When the pod last turned Ready (its Ready condition's transition), if it is Ready."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            return epoch(condition.get("lastTransitionTime"))
    return None


def gather(ctx: CheckContext) -> dict:
    demo = ctx.kube.worker_cluster(DEMO)
    pods = [p for p in ctx.kube.pods_of(DEMO) if not pod_row(p).terminating]
    return {"started_at": ctx.started_at, "demo": demo, "pods": pods, "runs": ctx.runs()}


def evaluate(facts: dict) -> list[Item]:
    demo, pods = facts["demo"], facts["pods"]
    value = env_value(demo, ENV_NAME)
    items = [
        item(
            f"changed the pod template: env {ENV_NAME} set ({ENV_VALUE} in the steps)",
            bool(value),
            f"{ENV_NAME} is {value}" if value else "",
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
    new = [p for p in pods if (created_at(p) or 0) > started]
    rolled = sorted(created_at(p) or 0 for p in new)
    # No old pod goes before a new one is Ready (maxUnavailable 0): a run that began by then
    # saw every pod change. A run begins after `workerlab load` has found its target, which on a
    # busy machine takes longer than the steps' `sleep 5` before the patch.
    first_ready = min((ready_at(p) or created_at(p) or 0 for p in new), default=0)
    runs = demo_runs(facts["runs"])
    spanning = [
        r
        for r in runs
        if rolled
        and r.get("started_at", 0) <= max(rolled[0], first_ready)
        and r.get("ended_at", 0) >= rolled[-1]
    ]
    # Only a new connection per request counts the server's mistakes: on a keep-alive
    # connection, a drain's close can cross the client's next request (lab question 4).
    covering = [r for r in spanning if not _keepalive(r)]
    said = f"{len(rolled)} new pods; {len(covering)} run(s) with --no-keepalive spanned them"
    if spanning and not covering:
        said += f" (only keep-alive runs did: {len(spanning)})"
    latest = runs[-1] if runs else None
    if rolled and latest is not None and latest.get("started_at", 0) > rolled[-1]:
        said += (
            "; your latest run started after the last pod was created: no pod rolled during "
            "it (the same template again changes nothing)"
        )
    items.append(
        item(
            "a load run with a new connection per request spanned the whole rollout",
            covering,
            said,
            "start the load first (in the background, --no-keepalive, --duration 90), then "
            "patch the template to a new value, then `wait`"
            + (
                ": a keep-alive run's errors may be the client/server close race, not the "
                "server's mistakes"
                if spanning and not covering
                else ""
            ),
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


def rollouts(events: list[dict]) -> dict[str, list[float]]:
    """The operator's rollout pods by template (a pod is named WC-HASH-RANDOM): when each was
    created, per rollout. The next lab's reset rolls demo back, a rollout of its own."""
    found: dict[str, list[float]] = {}
    for event in events:
        action = pod_action(str(event.get("message", "")))
        if action and action[2] == ROLLING_UPDATE:
            template = action[1].rsplit("-", 1)[0]
            found.setdefault(template, []).append(epoch(event_time(event)) or 0)
    return {template: sorted(times) for template, times in found.items()}


def drains(events: list[dict]) -> list[float]:
    """When the operator deleted an outdated pod in a rollout, in order."""
    found = []
    for event in events:
        action = pod_action(str(event.get("message", "")))
        if action and action[0] == "Deleted" and action[2].startswith(ROLLING_UPDATE):
            found.append(epoch(event_time(event)) or 0)
    return sorted(found)


def audit(evidence: Evidence) -> list[Item]:
    """The pass from the Events kept: a rollout of demo's pods, and a recorded
    new-connection-per-request run spanning the whole of it with zero failures."""
    rolled = rollouts(evidence.of(KIND, DEMO, Reason.CREATED_POD))
    items = [
        item(
            "the operator rolled demo's pods",
            rolled,
            f"{sum(len(t) for t in rolled.values())} pods in {len(rolled)} rollout(s)",
        )
    ]
    if not rolled:
        return items
    # As the live check: a run that began before the rollout's first old pod went (after the
    # first new one was Ready) saw every pod change; the run's clock starts once `workerlab load`
    # has found its target, which on a busy machine can be after the first new pod was created.
    deleted = drains(evidence.of(KIND, DEMO, Reason.DELETED_POD))
    spans = [
        (max(times[0], next((t for t in deleted if t >= times[0]), times[0])), times[-1])
        for times in rolled.values()
    ]
    runs = [r for r in demo_runs(evidence.runs) if not _keepalive(r)]
    covering = [
        r
        for r in runs
        for began, ended in spans
        # an Event's time is its second, truncated: the drain came within the next one
        if r.get("started_at", 0) < began + 1 and r.get("ended_at", 0) >= ended
    ]
    clean = [r for r in covering if r["summary"]["errors"] == 0 and r["summary"]["ok"] > 0]
    best = (clean or covering)[-1] if covering else None
    items.append(
        item(
            "a recorded --no-keepalive run spanned a whole rollout with zero failed requests",
            clean,
            f"{best['summary']['ok']} ok, {best['summary']['errors']} failed"
            if best
            else f"no recorded run spanned a rollout ({len(evidence.runs)} recorded)",
        )
    )
    return items


CHECKER = Checker(gather, evaluate, reset, audit)
