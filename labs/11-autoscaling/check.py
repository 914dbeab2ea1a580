"""Lab 11: an HorizontalPodAutoscaler drives wc/demo through the scale subresource; CPU load makes
it grow, the end of the load makes it shrink, and the operator follows both ways.

Evidence since `workerlab lab reset 11`: the HPA's own `SuccessfulRescale` events (the sizes it
chose), the operator's `Scaled` events on wc/demo (that it acted on them), and the journal's
CPU load run on wc/demo.
"""

from __future__ import annotations

from workerlab.api.objects import (
    condition_is_true,
    epoch,
    event_time,
    find_condition,
    hpa_new_size,
    hpa_targets,
    scaled_direction,
)
from workerlab.api.resource import HPA_KIND, HPA_RESCALE_REASON, KIND, Reason
from workerlab.common.views import list_hpas
from workerlab.labs.checking import CheckContext, Checker, Evidence, Item, item, run_matches
from workerlab.labs.starting_state import DEMO, demo_runs, reset_demo

START_REPLICAS = 2  # what the reset leaves, and the sample HPA's minReplicas
SAMPLE = "manifests/samples/hpa-demo.yaml"
LOAD = (
    "workerlab load wc/demo --path '/work/cpu?ms=50' --concurrency 16 --requests 100000 "
    "--duration 90 --no-keepalive"
)


def _since(events: list[dict], started: float) -> list[dict]:
    return [e for e in events if (epoch(event_time(e)) or 0) >= started]


def gather(ctx: CheckContext) -> dict:
    kube = ctx.kube
    hpas = [h for h in list_hpas(kube) if hpa_targets(h, DEMO)]
    hpa_events: list[dict] = []
    for hpa in hpas:
        hpa_events += kube.events_for(HPA_KIND, hpa["metadata"]["name"])
    return {
        "started_at": ctx.started_at,
        "hpas": hpas,
        "hpa_events": sorted(hpa_events, key=event_time),
        "wc_events": kube.events_for(KIND, DEMO),
        "runs": ctx.runs(),
    }


def rescale_sizes(events: list[dict]) -> list[int]:
    """The replica counts the HPA set, in order."""
    sizes = (
        hpa_new_size(str(e.get("message", "")))
        for e in events
        if e.get("reason") == HPA_RESCALE_REASON
    )
    return [s for s in sizes if s is not None]


def up_then_down(sizes: list[int], start: int = START_REPLICAS) -> tuple[bool, bool]:
    """(grew above the previous count, and later shrank after growing)."""
    grew = shrank = False
    previous = start
    for size in sizes:
        if size > previous:
            grew = True
        elif size < previous and grew:
            shrank = True
        previous = size
    return grew, shrank


def operator_directions(events: list[dict]) -> list[str]:
    found = (
        scaled_direction(str(e.get("message", "")))
        for e in events
        if e.get("reason") == Reason.SCALED
    )
    return [d for d in found if d]


def evaluate(facts: dict) -> list[Item]:
    started = facts["started_at"]
    if started is None:
        return [
            item(
                "the lab was started with `workerlab lab reset 11`",
                False,
                "",
                "run: workerlab lab reset 11, then the steps",
            )
        ]
    hpas = facts["hpas"]
    hpa = hpas[0] if hpas else None
    items = [
        item(
            "an HorizontalPodAutoscaler scales wc/demo",
            hpa is not None,
            f"hpa/{hpa['metadata']['name']}" if hpa else "none targets WorkerCluster demo",
            f"kubectl -n workerlab apply -f {SAMPLE}",
        )
    ]
    active = find_condition(hpa, "ScalingActive") if hpa else None
    items.append(
        item(
            "it reads the pods' CPU (condition ScalingActive=True)",
            hpa is not None and condition_is_true(hpa, "ScalingActive"),
            ": ".join(str(active[k]) for k in ("reason", "message") if active.get(k))
            if active
            else "no condition yet",
            "the HPA gets CPU from metrics-server: `kubectl top pods -n workerlab` must list "
            "demo's pods (make up installs manifests/addons/metrics-server); the pods need a "
            "CPU request (they have one by default); `kubectl -n workerlab describe hpa demo`",
        )
    )
    loads = [
        r
        for r in demo_runs(facts["runs"])
        if run_matches(r, path_prefix="/work/cpu") and (r.get("started_at") or 0) >= started
    ]
    items.append(
        item(
            "CPU load on wc/demo since the reset",
            loads,
            f"{len(loads)} run(s) on /work/cpu",
            LOAD,
        )
    )
    sizes = rescale_sizes(_since(facts["hpa_events"], started))
    grew, shrank = up_then_down(sizes)
    path = " -> ".join(str(s) for s in [START_REPLICAS, *sizes])
    items.append(
        item(
            "the HPA scaled wc/demo up under the load",
            grew,
            f"HPA sizes: {path}",
            "more load, for longer: the HPA sees CPU ~30 s after it starts (metrics-server "
            "window 15 s + the HPA's 15 s sync); " + LOAD,
        )
    )
    items.append(
        item(
            "... and back down after the load stopped",
            shrank,
            f"HPA sizes: {path}",
            "wait after the load: ~30 s until the metrics drop, then the 30 s scale-down "
            "stabilization window; kubectl -n workerlab wait wc/demo "
            "--for=jsonpath='{.spec.replicas}'=2 --timeout=180s",
        )
    )
    directions = operator_directions(_since(facts["wc_events"], started))
    followed_up = "up" in directions
    followed_down = followed_up and "down" in directions[directions.index("up") :]
    items.append(
        item(
            "the operator followed: Scaled up, then Scaled down events on wc/demo",
            followed_up and followed_down,
            ", ".join(directions) or "no Scaled events since the reset",
            "the operator reconciles spec.replicas whoever writes it: "
            "kubectl -n workerlab get events --field-selector involvedObject.name=demo; "
            "is the operator running? kubectl -n workerlab-system get pods",
        )
    )
    return items


def reset(ctx: CheckContext) -> list[str]:
    # reset_demo first deletes any HPA on demo, so the learner applies it afresh.
    return [reset_demo(ctx.kube)]


def audit(evidence: Evidence) -> list[Item]:
    """The pass from the Events kept (the HPA itself is gone with the next lab's reset): its
    rescales up then down, the operator's Scaled up then down, and a recorded CPU load run."""
    sizes = rescale_sizes(evidence.of(HPA_KIND))
    grew, shrank = up_then_down(sizes)
    path = " -> ".join(str(s) for s in [START_REPLICAS, *sizes])
    directions = operator_directions(evidence.of(KIND, DEMO, Reason.SCALED))
    up = "up" in directions
    down = up and "down" in directions[directions.index("up") :]
    loads = [r for r in demo_runs(evidence.runs) if run_matches(r, path_prefix="/work/cpu")]
    return [
        item("an HPA scaled wc/demo up, then back down", grew and shrank, f"HPA sizes: {path}"),
        item(
            "the operator followed: Scaled up, then down",
            up and down,
            ", ".join(directions) or "no Scaled events in the lab",
        ),
        item("a recorded CPU load run on wc/demo", loads, f"{len(loads)} run(s) on /work/cpu"),
    ]


CHECKER = Checker(gather, evaluate, reset, audit)
