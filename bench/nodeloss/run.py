"""A lost machine (issue 23, item 3): a WorkerCluster against a Deployment of the same pods, side by
side in the same run, over N trials.

Needs the lab's kind cluster with two workers and the operator's standby (`make down`, then
`make up NODES=3`). Each trial (tests/support/node_loss.py): wc/survivor and deployment/baseline,
2 pods each, one per worker, each behind a NodePort; the worker *without* the active master is
frozen (`docker pause`: no heartbeat, no answer), bounded load on fresh connections from the host
to the other worker's NodePorts; both sides timed back to 2 Ready pods away from the stopped
node, for up to --window seconds (the Deployment needs the node controller's ~50 s and then its
pods' 300 s `unreachable` toleration). Then the node is unpaused and the namespace removed.

    .venv/bin/python bench/nodeloss/run.py [--trials 3] [--window 420]   # ~8 min a trial
Writes bench/results/nodeloss.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the e2e test's own scenario

from support.node_loss import (  # noqa: E402
    CLIENTS,
    DEPLOYMENT,
    WC,
    docker,
    side_by_side,
    stop_a_machine,
)

from workerlab.api.resource import OPERATOR_LEASE, OPERATOR_NAMESPACE  # noqa: E402
from workerlab.common.nodes import runs_pods  # noqa: E402

CONTEXT = "kind-" + os.environ.get("CLUSTER_NAME", "workerlab")
TOLERANCE_S = 30  # spec.nodeLossTolerationSeconds' default
POD_START_S = 10  # a replacement's start on a warm node, on top of the tolerance
GOAL_S = TOLERANCE_S + POD_START_S


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class LabCluster:
    """kubectl on the lab's cluster, pinned to its context."""

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 200) -> str:
        done = subprocess.run(
            ["kubectl", "--context", CONTEXT, *args],
            input=stdin, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args[:4])}...: {done.stderr.strip()[-1500:]}")
        return done.stdout

    def get(self, *args: str) -> dict[str, Any]:
        return dict(json.loads(self.kubectl("get", *args, "-o", "json")))


def workers(cluster: LabCluster) -> list[str]:
    return sorted(n["metadata"]["name"] for n in cluster.get("nodes")["items"] if runs_pods(n))


def master_node(cluster: LabCluster) -> str:
    lease = cluster.get("lease", OPERATOR_LEASE, "-n", OPERATOR_NAMESPACE)
    holder = lease["spec"].get("holderIdentity") or ""
    return str(cluster.get("pod", holder, "-n", OPERATOR_NAMESPACE)["spec"]["nodeName"])


def trial(cluster: LabCluster, number: int, window: float) -> dict[str, Any]:
    namespace = f"nodeloss-{number}"
    side_by_side(cluster, namespace)
    nodes = workers(cluster)
    lost = next(n for n in nodes if n != master_node(cluster))
    (survivor,) = set(nodes) - {lost}
    try:
        outcome = stop_a_machine(cluster, namespace, lost, survivor, window)
    finally:
        docker("unpause", lost)
    cluster.kubectl("wait", "--for=condition=Ready", "nodes", "--all", "--timeout=180s")
    cluster.kubectl("delete", "namespace", namespace, "--timeout=180s")
    figures = outcome.figures()
    log(f"trial {number}: {json.dumps(figures)}")
    return figures


def summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 1),
        "max": round(max(values), 1),
        "all": [round(v, 1) for v in values],
    }


def report(results: dict[str, Any]) -> str:
    trials = results["trials"]

    def capacity(side: str) -> list[float]:
        return [t["full_capacity_s"][side] for t in trials if t["full_capacity_s"][side]]

    def failed(side: str) -> list[float]:
        return [t["requests"][side]["failed"] for t in trials]

    def failing_until(side: str) -> list[float]:
        return [t["requests"][side]["failing_until_s"] or 0.0 for t in trials]

    wc, dep = summary(capacity(WC)), summary(capacity(DEPLOYMENT))
    wc_holds = wc["n"] == len(trials) and wc.get("max", 1e9) <= GOAL_S
    never = len(trials) - dep["n"]
    ratio = (
        f"{wc['median'] / dep['median']:.2f}"
        if dep["n"] and wc["n"]
        else f"< {wc.get('median', 0) / results['window_s']:.2f} (the Deployment never, in "
        f"{results['window_s']:.0f} s)"
    )
    f_wc, f_dep = summary(failed(WC)), summary(failed(DEPLOYMENT))
    u_wc, u_dep = summary(failing_until(WC)), summary(failing_until(DEPLOYMENT))
    fewer = f_wc["median"] <= f_dep["median"]
    return "\n".join(
        [
            "# A lost machine: WorkerCluster vs Deployment (bench/nodeloss/run.py)",
            "",
            f"{results['machine']}; {len(trials)} trials, each watched {results['window_s']:.0f} s "
            "after the stop; 2 pods a side, one per worker; the worker without the active "
            "master frozen (`docker pause`).",
            "",
            "| measure | goal | WorkerCluster | Deployment | ratio | |",
            "|---|---|---|---|---|---|",
            f"| back to full Ready capacity, max (median) | <= {GOAL_S} s (tolerance 30 s + "
            f"start) | {wc.get('max')} s ({wc.get('median')} s) | "
            f"{dep.get('max', '-')} s ({dep.get('median', '-')} s), never in {never} trial(s) | "
            f"{ratio} | {'holds' if wc_holds else 'misses'} |",
            f"| failed requests, median (fresh connections, {results['clients']} clients a side) "
            f"| fewer than the Deployment | {f_wc['median']} | {f_dep['median']} | "
            f"{f_wc['median'] / max(f_dep['median'], 1):.2f} | {'holds' if fewer else 'misses'} |",
            f"| last failure after the stop, median | - | {u_wc['median']} s | "
            f"{u_dep['median']} s | - | - |",
            "",
            "Every trial: nodeloss.json.",
        ]
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--window", type=float, default=420.0)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    cluster = LabCluster()
    nodes = workers(cluster)
    if len(nodes) < 2:
        print(
            f"bench/nodeloss needs 2 worker nodes, {CONTEXT} has {len(nodes)}: "
            "make down, then make up NODES=3",
            file=sys.stderr,
        )
        return 2
    started = time.monotonic()
    trials = []
    for number in range(1, args.trials + 1):
        log(f"trial {number}/{args.trials} (up to {args.window:.0f} s after the stop)")
        trials.append(trial(cluster, number, args.window))
    results = {
        "machine": f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"load {os.getloadavg()[0]:.2f}",
        "window_s": args.window,
        "clients": CLIENTS,
        "took_s": round(time.monotonic() - started),
        "trials": trials,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "nodeloss.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "nodeloss.md").write_text(report(results) + "\n")
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
