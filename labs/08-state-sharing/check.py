"""Lab 8: processes share no memory. Per-process counters disagree; with Redis they agree and no
increment is lost (the seed's "use external services or databases" advice, measured)."""

from __future__ import annotations

from workerlab.api.objects import created_at, env_value, worker_port
from workerlab.common.errors import WorkerlabError
from workerlab.common.views import pod_row
from workerlab.common.wcstate import converged
from workerlab.labs.checking import CheckContext, Checker, Item, item, listing, run_matches
from workerlab.labs.starting_state import DEMO, delete_addon, demo_runs, reset_demo

READS_PER_POD = 4  # each read through the pod proxy may land on another process


def gather(ctx: CheckContext) -> dict:
    demo = ctx.kube.worker_cluster(DEMO)
    pods = [p for p in ctx.kube.pods_of(DEMO) if pod_row(p).ready and not pod_row(p).terminating]
    reads = []
    for pod in pods:
        for _ in range(READS_PER_POD):
            try:
                reads.append(
                    ctx.kube.proxy_get(pod["metadata"]["name"], worker_port(demo), "/counter")
                )
            except WorkerlabError as error:
                reads.append({"error": str(error), "pod": pod["metadata"]["name"]})
    newest = max((created_at(p) or 0 for p in pods), default=0)
    return {"demo": demo, "reads": reads, "newest_pod": newest, "runs": ctx.runs()}


def evaluate(facts: dict) -> list[Item]:
    demo, reads = facts["demo"], facts["reads"]
    posts = [
        r for r in demo_runs(facts["runs"]) if run_matches(r, path_prefix="/counter", method="POST")
    ]
    items = [
        item(
            "counted requests with POST /counter",
            posts,
            f"{len(posts)} run(s)",
            "workerlab load wc/demo --path /counter --method POST --requests 100 --concurrency 4",
        )
    ]
    redis_url = env_value(demo, "REDIS_URL")
    items.append(
        item(
            "wc/demo points its processes at Redis (env REDIS_URL)",
            bool(redis_url),
            f"REDIS_URL={redis_url}" if redis_url else "REDIS_URL not set",
            "kubectl apply -k manifests/addons/redis, then patch REDIS_URL into wc/demo "
            "(see the steps)",
        )
    )
    done, why = converged(demo)
    items.append(
        item("the rollout to Redis finished", done, why, "workerlab status demo --wait 180")
    )
    failed = [r for r in reads if "error" in r]
    backends = {r.get("backend") for r in reads if "error" not in r}
    values = {r.get("count") for r in reads if "error" not in r}
    where = {(r.get("pod"), r.get("pid")) for r in reads if "error" not in r}
    items.append(
        item(
            "every process reads one shared counter",
            reads and not failed and backends == {"redis"} and len(values) == 1,
            f"backends {listing(sorted(map(str, backends)))}, "
            f"values {listing(sorted(map(str, values)))} "
            f"from {len(where)} processes" + (f"; {failed[0]['error']}" if failed else ""),
            "a 503 means Redis is unreachable: check the Service name in REDIS_URL; "
            "backend 'process' means a pod still runs without REDIS_URL",
        )
    )
    after = [r for r in posts if r.get("started_at", 0) >= facts["newest_pod"]]
    if after and len(values) == 1:
        counted = sum(r["summary"]["ok"] for r in after)
        (value,) = values
        if value is not None and value < counted:
            hint = (
                f"the counter went DOWN, from at least {counted} to {value}: Redis lost its data "
                "(restarted without persistence, e.g. scaled to 0 and back). An external store "
                "shares state only as durably as it keeps it. `workerlab lab reset 8` and redo "
                "the steps"
            )
        else:
            hint = (
                "other clients also incremented, or runs before the switch are mixed in: "
                "`workerlab lab reset 8` and redo the steps"
            )
        items.append(
            item(
                "no increment was lost: the counter equals the successful POSTs since the switch",
                value == counted,
                f"counter {value}, successful POSTs {counted}",
                hint,
            )
        )
    return items


def reset(ctx: CheckContext) -> list[str]:
    done = [delete_addon(ctx.kube, "redis") or "redis add-on was not installed"]
    done.append(reset_demo(ctx.kube))
    return done


CHECKER = Checker(gather, evaluate, reset)
