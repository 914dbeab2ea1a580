"""Lab 6: Service (kube-proxy, per connection) vs the seed's nginx upstream (per request)."""

from __future__ import annotations

from workerlab.common.loadstats import spread
from workerlab.common.views import pod_row
from workerlab.labs.checking import CheckContext, Checker, Item, counts, item, run_port
from workerlab.labs.starting_state import DEMO, DEMO_NODE_PORT, reset_demo

NGINX_PORT = 30082
MIN_SPREAD = 0.25  # the least-loaded pod got at least a quarter of the busiest pod's share


def gather(ctx: CheckContext) -> dict:
    pods = [p for p in ctx.kube.pods_of(DEMO) if pod_row(p).ready and not pod_row(p).terminating]
    return {"pods": [p["metadata"]["name"] for p in pods], "runs": ctx.runs()}


def evaluate(facts: dict) -> list[Item]:
    pods = set(facts["pods"])

    def latest(port: int) -> dict | None:
        runs = [r for r in facts["runs"] if run_port(r) == port and r["summary"].get("ok")]
        return runs[-1] if runs else None

    service, nginx = latest(DEMO_NODE_PORT), latest(NGINX_PORT)
    items = [
        item(
            "measured the Service (NodePort 30080, kube-proxy)",
            service is not None,
            f"requests per pod: {counts(service['summary']['by_pod'])}" if service else "",
            "workerlab load http://127.0.0.1:30080/ --requests 200 --concurrency 4",
        ),
        item(
            "measured the seed's nginx upstream (NodePort 30082)",
            nginx is not None,
            f"requests per pod: {counts(nginx['summary']['by_pod'])}" if nginx else "",
            "kubectl apply -k manifests/addons/nginx, wait for it, then: "
            "workerlab load http://127.0.0.1:30082/ --requests 200 --concurrency 4",
        ),
    ]
    if nginx is None:
        return items
    by_pod = nginx["summary"]["by_pod"]
    # Ready pods that got nothing count as zeros: a spread over only those that answered
    # would call 200 requests on one pod "even".
    nginx_spread = spread(by_pod, expected=pods)
    items.append(
        item(
            "nginx spread the requests over every pod",
            pods <= set(by_pod) and (nginx_spread or 0) >= MIN_SPREAD,
            f"spread {nginx_spread} over {len(pods | set(by_pod))} pods (Ready now: {len(pods)})",
            "is nginx's upstream pointing at every worker pod? kubectl -n workerlab logs "
            "deployment/nginx; re-run the load once all demo pods are Ready",
        )
    )
    return items


def reset(ctx: CheckContext) -> list[str]:
    return [reset_demo(ctx.kube)]


CHECKER = Checker(gather, evaluate, reset)
