"""1. The master (operator) against the built-in controller (Deployment), alternated A B A B...

Every time is measured the same way on both sides, from the pods alone: "settled" means the
live (non-terminating) pods of the workload number exactly `replicas`, all Ready, all on the
wanted template. Each round: apply 3 → Ready, N self-heals, a rollout under constant load
through a NodePort on 127.0.0.1, scale 2 → 10 → 2, delete, apply 10 → Ready, delete.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from common import NAMESPACE, log, median, ratio, wait_until
from load import ConstantLoad
from workloads import ROLL_ENV, Side, node_port_service

from api import Api, PodView

WC_PORT, DEP_PORT = 30087, 30088
READY_TIMEOUT = 180
DRAIN_AFTER_ROLLOUT_S = 10  # keep the load on while the old pods drain and terminate


def _live(api: Api, side: Side) -> list[PodView]:
    return [p for p in api.instance_pods(NAMESPACE, side.name) if not p.terminating]


def settled(
    api: Api, side: Side, replicas: int, also: Callable[[PodView], bool] = lambda p: True
) -> bool:
    live = _live(api, side)
    return len(live) == replicas and all(p.ready and also(p) for p in live)


def apply_to_ready(api: Api, side: Side, replicas: int, node_port: int | None) -> float:
    started = time.monotonic()
    api.post(side.collection, side.body(replicas, node_port=node_port))
    wait_until(lambda: settled(api, side, replicas), READY_TIMEOUT, what=f"{side.name} Ready")
    return round(time.monotonic() - started, 3)


def self_heal(api: Api, side: Side, replicas: int) -> float:
    victim = _live(api, side)[0]
    started = time.monotonic()
    api.delete(f"/api/v1/namespaces/{NAMESPACE}/pods/{victim.name}", background=False)

    def healed() -> bool:
        live = _live(api, side)
        gone = all(p.uid != victim.uid for p in live)
        return gone and len(live) == replicas and all(p.ready for p in live)

    wait_until(healed, READY_TIMEOUT, what=f"replacement of {victim.name}")
    return round(time.monotonic() - started, 3)


def scale(api: Api, side: Side, replicas: int) -> float:
    started = time.monotonic()
    api.merge_patch(side.path, {"spec": {"replicas": replicas}})
    wait_until(lambda: settled(api, side, replicas), READY_TIMEOUT, what=f"scale to {replicas}")
    return round(time.monotonic() - started, 3)


def rollout(api: Api, side: Side, replicas: int, port: int, value: str) -> dict:
    load = ConstantLoad(port).start()
    time.sleep(1)  # the stream is flowing before the change
    started = time.monotonic()
    api.merge_patch(side.path, side.roll_patch(value, replicas))
    try:
        wait_until(
            lambda: settled(api, side, replicas, also=lambda p: p.env.get(ROLL_ENV) == value),
            READY_TIMEOUT,
            what=f"rollout of {side.name}",
        )
    except TimeoutError:
        load.stop()
        raise
    seconds = round(time.monotonic() - started, 3)
    time.sleep(DRAIN_AFTER_ROLLOUT_S)
    return {"seconds": seconds, "requests": load.stop()}


def delete_and_wait(api: Api, side: Side, service: bool) -> None:
    api.delete(side.path)

    def gone() -> bool:
        pods = api.instance_pods(NAMESPACE, side.name)
        if pods or not service:
            return not pods
        try:
            api.get(f"/api/v1/namespaces/{NAMESPACE}/services/{side.name}")
        except Exception:
            return True
        return False

    wait_until(gone, READY_TIMEOUT, interval=0.5, what=f"{side.name} gone")


def one_round(api: Api, side: Side, port: int, round_no: int, heals: int) -> dict:
    wc_port = port if side.kind == "WorkerCluster" else None
    out: dict = {"apply_3": apply_to_ready(api, side, 3, wc_port)}
    out["self_heal"] = [self_heal(api, side, 3) for _ in range(heals)]
    out["rollout"] = rollout(api, side, 3, port, f"r{round_no}")
    scale(api, side, 2)
    out["scale_2_10"] = scale(api, side, 10)
    out["scale_10_2"] = scale(api, side, 2)
    delete_and_wait(api, side, service=wc_port is not None)
    out["apply_10"] = apply_to_ready(api, side, 10, wc_port)
    delete_and_wait(api, side, service=wc_port is not None)
    return out


def summarize(rounds: dict[str, list[dict]]) -> dict:
    def collect(kind: str, key: str) -> list[float]:
        values: list[float] = []
        for r in rounds[kind]:
            v = r[key]
            values += v if isinstance(v, list) else [v["seconds"] if isinstance(v, dict) else v]
        return values

    figures = {}
    for key, label in [
        ("apply_3", "apply → all Ready, 3 replicas"),
        ("apply_10", "apply → all Ready, 10 replicas"),
        ("self_heal", "self-heal: pod deleted → replacement Ready"),
        ("scale_2_10", "scale 2 → 10 settled"),
        ("scale_10_2", "scale 10 → 2 settled"),
        ("rollout", "rollout of a template change (3 replicas) to completion"),
    ]:
        wc, dep = collect("WorkerCluster", key), collect("Deployment", key)
        figures[key] = {
            "label": label,
            "unit": "s (median)",
            "operator": median(wc),
            "deployment": median(dep),
            "ratio": ratio(median(wc), median(dep)),
            "samples": {"operator": wc, "deployment": dep},
            "goal": "<= 1.2",
            "holds": (r := ratio(median(wc), median(dep))) is not None and r <= 1.2,
        }
    failed = {
        kind: sum(r["rollout"]["requests"]["failed"] for r in rounds[kind]) for kind in rounds
    }
    total = {kind: sum(r["rollout"]["requests"]["total"] for r in rounds[kind]) for kind in rounds}
    figures["rollout_failed_requests"] = {
        "label": "failed requests during rollouts (constant load via NodePort)",
        "unit": "requests",
        "operator": failed["WorkerCluster"],
        "deployment": failed["Deployment"],
        "sent": total,
        "goal": "0 for both",
        "holds": failed["WorkerCluster"] == 0 and failed["Deployment"] == 0,
    }
    return figures


def run(api: Api, rounds: int = 2, heals: int = 5) -> dict:
    wc, dep = Side("WorkerCluster", "wc-bench"), Side("Deployment", "dep-bench")
    for side in (wc, dep):
        delete_and_wait(api, side, service=side is wc)
    api.delete(f"/api/v1/namespaces/{NAMESPACE}/services/{dep.name}", background=False)
    api.post(f"/api/v1/namespaces/{NAMESPACE}/services", node_port_service(dep.name, DEP_PORT))
    results: dict[str, list[dict]] = {"WorkerCluster": [], "Deployment": []}
    try:
        for n in range(rounds):
            for side, port in ((wc, WC_PORT), (dep, DEP_PORT)):
                log(f"controller round {n + 1}/{rounds}: {side.kind}")
                results[side.kind].append(one_round(api, side, port, n, heals))
    finally:
        for side in (wc, dep):
            delete_and_wait(api, side, service=side is wc)
        api.delete(f"/api/v1/namespaces/{NAMESPACE}/services/{dep.name}")
    return {"rounds": results, "figures": summarize(results)}
