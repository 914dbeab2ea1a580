"""`make bench-scale`: the operator against the Deployment controller at 10 to 1,000 workloads.

    .venv/bin/python bench/scale/run.py                      # N = 10, 100, 1000 (27 min on 2 cores)
    .venv/bin/python bench/scale/run.py --clusters 20 --window 60     # a quick look

For each N, on a fresh control plane with kwok's fake nodes (bench/scale/rig.py): apply N
WorkerClusters x 5 pods, then N Deployments x 5 pods, each timed to all pods Ready; a steady
window with both at rest; delete 10% of each side's pods and time the heal; scale all of each
side from 5 to 2. Requests come from the API server's audit log, split by client (the operator's
service account vs kube-controller-manager's Deployment and ReplicaSet controllers) and class
(read, write; process proxy reads and leader-election/peering writes apart). Results go to
bench/results/scale.{json,md,png}; the goal table is printed at the end. The lab's kind cluster,
if it runs, is paused meanwhile (--keep-kind to leave it running).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the rig's siblings, never the repo root
sys.path.insert(1, str(HERE.parent))  # then bench/'s shared helpers (common.py)

import measure  # noqa: E402
import report  # noqa: E402
from common import machine  # noqa: E402
from rig import NAMESPACE, PODS_PER_NODE, Rig, log  # noqa: E402
from workload import DEP, WC, Driver, PodWatch, names  # noqa: E402

RESULTS = HERE.parent / "results"
PODS = 5
SCALED = 2
HEAL_SHARE = 0.10


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/scale/run.py", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--clusters", default="10,100,1000", help="comma-separated N values (default 10,100,1000)"
    )
    parser.add_argument(
        "--window",
        type=int,
        default=300,
        help="steady-state window at the largest N, seconds (default 300)",
    )
    parser.add_argument(
        "--small-window",
        type=int,
        default=60,
        help="steady-state window at the smaller N values, seconds (default 60)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="scale", help="result file stem (default scale)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument(
        "--recount",
        type=Path,
        metavar="JSON",
        help="count the requests of a finished run (its results JSON) again from the audit logs "
        "left in its work directories, and rewrite its results",
    )
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="drive one side, then the other (default: both at once, each timed to its own "
        "settle; slower: at N=1000 the phases add up to ~29 min, the window apart)",
    )
    parser.add_argument(
        "--keep-kind",
        action="store_true",
        help="leave the lab's kind cluster running beside the rig (default: paused for the run "
        "and resumed at its end)",
    )
    args = parser.parse_args(argv)
    args.clusters = sorted({int(x) for x in str(args.clusters).split(",") if x.strip()})
    return args


def operator_errors(log_path: Path) -> list[str]:
    """Lines of the operator's log at error level or with a traceback. A failed reconcile is
    logged at warning level and counted by its metric (workerlab_reconcile_errors_total), not
    here: matching the word "error" in any line counted each of those twice."""
    out = []
    for line in log_path.read_text(errors="replace").splitlines():
        if re.search(r'"(severity|level)":\s*"(error|critical)"|Traceback', line, re.I):
            out.append(line[:400])
    return out


def kind_nodes(cluster: str = "") -> list[str]:
    """Running node containers of kind's `cluster` (of any kind cluster when empty): none when
    docker is absent or stopped."""
    if shutil.which("docker") is None:
        return []
    label = f"label=io.x-k8s.kind.cluster{'=' + cluster if cluster else ''}"
    try:
        out = subprocess.run(
            ["docker", "ps", "--filter", label, "--format", "{{.Names}}"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return out.stdout.split() if out.returncode == 0 else []


@contextlib.contextmanager
def kind_paused(keep: bool) -> Iterator[list[str]]:
    """The rig takes both cores of a small machine, and the lab's kind cluster beside it, even
    idle, took 8-10% of them and stretched every phase (27 -> 30+ min here). Its node
    containers are paused (`docker pause`: every process frozen, nothing restarted, no state
    lost) for the run and resumed at its end, also when the run fails or is stopped."""
    lab = kind_nodes(os.environ.get("CLUSTER_NAME", "workerlab"))  # hack/lib.sh's name
    paused: list[str] = []
    if lab and not keep:
        log(
            f"pausing the lab's kind cluster for this run (docker pause {' '.join(lab)}; its API "
            "server does not answer until the end, when it is resumed as it was; --keep-kind to "
            "leave it running)"
        )
        if subprocess.run(["docker", "pause", *lab], capture_output=True).returncode == 0:
            paused = lab
        else:
            log("warning: could not pause it")
    beside = [n for n in kind_nodes() if n not in paused]  # another kind cluster: never touched
    if beside:
        log(f"warning: kind nodes running beside the rig ({', '.join(beside)}): slower figures")
    try:
        yield beside
    finally:
        if paused:
            resumed = subprocess.run(["docker", "unpause", *paused], capture_output=True, text=True)
            if resumed.returncode == 0:
                log(f"resumed the lab's kind cluster ({' '.join(paused)})")
            else:
                log(f"could not resume {' '.join(paused)}: {resumed.stderr.strip()}; run `make up`")


def lost_clusters(rig: Rig, n: int, replicas: int) -> list[str]:
    """WorkerClusters missing, or not reporting `replicas` Ready for their current generation."""
    assert rig.api is not None
    found = rig.api._call(
        "GET", f"/apis/workerlab.dev/v1alpha1/namespaces/{NAMESPACE}/workerclusters"
    )
    by_name = {wc["metadata"]["name"]: wc for wc in found.get("items") or []}
    lost = []
    for name in names(WC, n):
        wc = by_name.get(name)
        status = (wc or {}).get("status") or {}
        if (
            wc is None
            or status.get("readyReplicas") != replicas
            or status.get("observedGeneration") != wc["metadata"].get("generation")
        ):
            lost.append(name)
    return lost


def quiesce(rig: Rig, n: int, timeout: float, settle: float = 10.0) -> float | None:
    """Seconds until every workload's status reports PODS Ready for its generation."""
    assert rig.api is not None
    paths = {
        WC: f"/apis/workerlab.dev/v1alpha1/namespaces/{NAMESPACE}/workerclusters",
        DEP: f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments",
    }

    def done() -> bool:
        for path in paths.values():
            items = rig.api._call("GET", path, timeout=60.0).get("items") or []
            if len(items) != n:
                return False
            for item in items:
                status = item.get("status") or {}
                if status.get("readyReplicas") != PODS or status.get("observedGeneration") != item[
                    "metadata"
                ].get("generation"):
                    return False
        return True

    started = time.monotonic()
    try:
        rig.plane.wait(done, timeout, "both controllers' status", every=2.0)
    except AssertionError as error:
        log(f"not quiet: {error}")
        return None
    time.sleep(settle)
    return round(time.monotonic() - started, 1)


def run_one(n: int, window: int, rng: random.Random, concurrent: bool = True) -> dict[str, Any]:
    nodes = max(2, math.ceil(2 * n * PODS / (PODS_PER_NODE * 0.8)))
    rig = Rig(nodes=nodes)
    result: dict[str, Any] = {
        "clusters": n,
        "pods_per_cluster": PODS,
        "nodes": nodes,
        "sides": "concurrent" if concurrent else "sequential",
    }
    watch: PodWatch | None = None
    sampler: measure.Sampler | None = None
    try:
        rig.start()
        assert rig.api is not None and rig.operator is not None
        audit = measure.AuditLog(rig.plane.audit_log)
        watch = PodWatch(rig.api)
        rig.plane.wait(lambda: watch.informer.lists > 0, 30, "bench pod watch")
        driver = Driver(rig.api)
        pids = rig.pids()
        sampler = measure.Sampler(rig.operator_metrics_text, pids["operator"])
        sampler.start()
        cpu_start = {k: measure.cpu_seconds(p) for k, p in pids.items()}
        timeout = 180 + 1.5 * n
        phases: dict[str, dict[str, Any]] = {}

        def timed(name: str, acts: dict[str, Any], what: str) -> None:
            """Both sides at once (or one, in sequential mode): each act starts at the same
            moment in a thread of its own; each side is timed until its own pods settle."""
            cpu0 = {k: measure.cpu_seconds(p) for k, p in pids.items()}
            t0, m0 = time.time(), time.monotonic()  # from the first write of the bench
            workers = [threading.Thread(target=act) for act in acts.values()]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            settled = watch.wait_settled_all(list(acts), timeout, what, started=m0)
            t1 = time.time()
            for kind in acts:
                seconds = settled.get(kind)
                phases[f"{name}:{kind}"] = {
                    "seconds": seconds,
                    "start": t0,
                    "end": t0 + seconds if seconds is not None else t1,
                    "cpu_whole_phase": {
                        k: round(measure.cpu_seconds(p) - cpu0[k], 2) for k, p in pids.items()
                    },
                }
                log(f"N={n} {name} {kind}: {seconds} s")

        def sides(make) -> list[dict[str, Any]]:
            both = {kind: make(kind) for kind in (WC, DEP)}
            return [both] if concurrent else [{k: v} for k, v in both.items()]

        for kind in (WC, DEP):
            watch.want(kind, names(kind, n), PODS)
        for acts in sides(lambda k: lambda: driver.apply(k, names(k, n), PODS)):
            timed("ready", acts, "apply")

        # At rest means both controllers are done, not only the pods: wait for every
        # WorkerCluster's and Deployment's status to report its Ready pods, then a little more.
        quiet_s = quiesce(rig, n, timeout)
        result["quiesce_s"] = quiet_s
        log(f"N={n} both controllers quiet after {quiet_s} s; steady window {window} s")
        cpu0 = {k: measure.cpu_seconds(p) for k, p in pids.items()}
        t0 = time.time()
        time.sleep(window)
        phases["steady"] = {
            "seconds": window,
            "start": t0,
            "end": time.time(),
            "cpu": {k: round(measure.cpu_seconds(p) - cpu0[k], 2) for k, p in pids.items()},
        }

        victims = {
            kind: rng.sample(live, max(1, round(len(live) * HEAL_SHARE)))
            for kind in (WC, DEP)
            if (live := watch.all_live(kind))
        }
        for acts in sides(lambda k: lambda: driver.delete_pods(victims[k])):
            timed("heal", acts, f"heal {len(victims[WC])} pods")

        for acts in sides(lambda k: lambda: driver.scale(k, names(k, n), SCALED)):
            for kind in acts:
                watch.want(kind, names(kind, n), SCALED)
            timed("scale", acts, "scale")
            for kind in acts:
                watch.lowered(kind)

        time.sleep(3)  # the audit log is written in batches
        audit.read()
        metrics = measure.parse_metrics(rig.operator_metrics_text() or "")
        for phase in phases.values():
            phase["requests"] = audit.counts(phase["start"], phase["end"])
        result["phases"] = phases
        result["requests_total"] = audit.counts(0, time.time() + 1)
        result["cpu_seconds"] = {
            k: round(measure.cpu_seconds(p) - cpu_start[k], 2) for k, p in pids.items()
        }
        result["peak_rss_mib"] = {k: measure.rss_mib(p) for k, p in pids.items()}
        result["reconcile"] = {
            "p50_s": measure.quantile(metrics, "workerlab_reconcile_time_seconds", 0.5),
            "p99_s": measure.quantile(metrics, "workerlab_reconcile_time_seconds", 0.99),
            "count": metrics.get("workerlab_reconcile_time_seconds_count"),
            "errors": metrics.get("workerlab_reconcile_errors_total"),
        }
        result["workqueue_peak_depth"] = sampler.peak_depth
        errors = operator_errors(rig.operator_log)
        result["errors"] = {
            "operator_log": len(errors),
            "operator_log_sample": errors[:5],
            "reconcile_errors": metrics.get("workerlab_reconcile_errors_total", 0.0),
            "bench_client": driver.errors[:5],
        }
        result["lost_clusters"] = lost_clusters(rig, n, SCALED)
        result["duplicates"] = {
            kind: {
                "worst_excess": side.duplicates,
                "instances": sorted(side.duplicate_instances)[:10],
            }
            for kind, side in watch.sides.items()
        }
        result["final_live_pods"] = {kind: len(watch.all_live(kind)) for kind in (WC, DEP)}
        result["operator_exit"] = rig.operator.poll()
    finally:
        if sampler is not None:
            sampler.stop()
        if watch is not None:
            watch.stop()
        rig.stop()
        result["workdir"] = str(rig.dir)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.recount is not None:
        return recount(args.recount)
    # Stopped by a signal (even started in the background, where SIGINT is ignored): unwind, so
    # every control plane, kwok and operator this run started is stopped by its pid.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    rng = random.Random(args.seed)
    runs = []
    with kind_paused(args.keep_kind) as beside:
        load = os.getloadavg()[0]
        if load > 1.5:
            log(f"warning: load average {load:.1f} before the rig starts: slower figures")
        for n in args.clusters:
            window = args.window if n == args.clusters[-1] else args.small_window
            log(f"=== N = {n} WorkerClusters and {n} Deployments x {PODS} pods ===")
            t0 = time.monotonic()
            run = run_one(n, window, rng, concurrent=not args.sequential)
            run["wall_s"] = round(time.monotonic() - t0, 1)
            runs.append(run)
            log(f"N={n} done in {run['wall_s']} s")
    document = {
        "machine": {**machine(), "kind_nodes_beside": beside},
        "clusters": args.clusters,
        "runs": runs,
        "total_wall_s": round(time.monotonic() - started, 1),
    }
    document["name"] = args.name
    return write_results(document, args.out)


def write_results(document: dict[str, Any], out: Path) -> int:
    name = document["name"]
    document["summary"] = [report.summarize(r) for r in document["runs"]]
    document["goals"] = report.goals(document["summary"])
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")
    table = report.markdown(document)
    (out / f"{name}.md").write_text(table)
    try:
        import plot

        plot.plot(document["summary"], out / f"{name}.png")
    except ImportError as error:
        log(f"no plot ({error}): pip install -e '.[bench]'")
    print(table)
    log(f"results: {out / name}.{{json,md,png}} ({document['total_wall_s']} s)")
    failed = any(g["verdict"] == "misses" for g in document["goals"] if g.get("correctness"))
    return 1 if failed else 0


def recount(path: Path) -> int:
    """Count the requests and the operator's error lines of a finished run again from the logs
    its control planes left in their work directories (kept under /tmp); rewrite its results."""
    document = json.loads(path.read_text())
    for run in document["runs"]:
        audit = measure.AuditLog(Path(run["workdir"]) / "audit.log")
        audit.read()
        if not audit.events:
            raise SystemExit(
                f"no audit log in {run['workdir']}: cannot recount N={run['clusters']}"
            )
        for phase in run["phases"].values():
            phase["requests"] = audit.counts(phase["start"], phase["end"])
        run["requests_total"] = audit.counts(0, time.time() + 1)
        errors = operator_errors(Path(run["workdir"]) / "operator.log")
        run["errors"].update(operator_log=len(errors), operator_log_sample=errors[:5])
        log(
            f"N={run['clusters']}: {len(audit.events)} audited requests, "
            f"{len(audit.files())} log files"
        )
    return write_results(document, path.parent)


if __name__ == "__main__":
    sys.exit(main())
