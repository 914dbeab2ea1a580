"""`make bench`: the four side-by-side measurements of issue 7, written to bench/results/.

    .venv/bin/python bench/run.py            # full: 5-minute steady-state window (< 20 min)
    .venv/bin/python bench/run.py --quick    # 60 s window, shorter wrk runs (about 10 min)

Needs the kind cluster (`make up`), wrk and node. Every figure is a ratio against a reference
measured in the same run; see bench/README.md for the method.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench/ siblings, never the root

import controller_bench
import dashboard_bench
import efficiency
import http_bench
import profiling
import report
import spread_bench
from common import RESULTS_DIR, log, machine
from namespace import ensure_namespace
from servers import serving

from api import Api
from workerlab.worker.config import DEFAULT_BALANCE

SECTIONS = ("controller", "http", "isolation", "efficiency", "profile", "spread", "dashboard")
CLUSTER_SECTIONS = {"controller", "efficiency", "dashboard"}  # the others run on loopback only


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="60 s window, shorter loads")
    parser.add_argument("--window", type=int, help="steady-state window in s (default 300)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--dashboard-window", type=int, help="seconds the dashboard serves 15 pods (default 600)"
    )
    args = parser.parse_args(argv)
    args.window = args.window or (60 if args.quick else 300)
    args.wrk_seconds = 3 if args.quick else 5
    args.wrk_rounds = 2 if args.quick else 3
    # Three rounds per side: a single slow round cannot move the median of a once-per-round
    # measure (rollout, scale); 4 self-heals per round give a median of 12.
    args.controller_rounds = 2 if args.quick else 3
    args.heals = 5 if args.quick else 4
    args.spread_requests = 400 if args.quick else 600
    args.dashboard_window = args.dashboard_window or (120 if args.quick else 600)
    return args


def profile(out: Path) -> dict:
    """The largest gap found (worker vs minimal ASGI on `/`): both profiled the same way."""
    profiles = {}
    with tempfile.TemporaryDirectory() as logs:
        for server in ("worker", "minimal_asgi"):
            with serving(server, 1, Path(logs)) as running:
                profiles[server] = profiling.profile_server(
                    running.pid, running.url, out, f"profile-{server}"
                )
    return profiles


def write_spread(results: dict, out: Path, started: float) -> None:
    """The spread section in its own files (spread.json, spread.md), whatever else ran."""
    spread = results["spread"]
    spread["total_run_s"] = round(time.monotonic() - started, 1)
    document = {"machine": results["machine"], **spread}
    (out / "spread.json").write_text(json.dumps(document, indent=2) + "\n")
    if "error" not in spread:
        (out / "spread.md").write_text(spread_bench.markdown(spread, results["machine"]))
    log(f"spread: {out / 'spread.md'} ({spread['total_run_s']} s)")


def write_own(name: str, results: dict, out: Path, markdown) -> None:
    """A section with its own files (NAME.json, NAME.md), whatever else ran."""
    section = results[name]
    (out / f"{name}.json").write_text(
        json.dumps({"machine": results["machine"], **section}, indent=2) + "\n"
    )
    if "error" not in section:
        (out / f"{name}.md").write_text(markdown(section, results["machine"]))
    log(f"{name}: {out / f'{name}.md'}")


def attempt(results: dict, key: str, measure, *args) -> None:
    """One section; a failure is recorded in the results instead of losing the whole run."""
    try:
        results[key] = measure(*args)
    except Exception as error:
        log(f"{key} failed: {error!r}")
        results[key] = {"error": repr(error)}


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: dict = {"machine": machine(), "args": {"quick": args.quick, "window_s": args.window}}
    api = None
    if CLUSTER_SECTIONS & set(args.only):
        try:
            api = Api()
            ensure_namespace(api)
        except Exception as error:  # no kubeconfig, refused connection, API error
            print(
                f"bench: the kind cluster is not reachable ({type(error).__name__}: {error}).\n"
                "Run `make up` first, or run only the loopback sections: "
                "--only http isolation profile",
                file=sys.stderr,
            )
            return 2
    steady: dict = {}
    if "efficiency" in args.only:
        # The window watches only the `steady` WorkerCluster's objects, and the loopback
        # benchmarks do not touch the cluster: run them meanwhile.
        thread = threading.Thread(
            target=attempt, args=(steady, "result", efficiency.steady_state, Api(), args.window)
        )
        thread.start()
    with tempfile.TemporaryDirectory() as logs:
        loads = (Path(logs), args.wrk_rounds, args.wrk_seconds)
        if "http" in args.only:
            attempt(results, "worker_vs_seed", http_bench.throughput, *loads)
        if "isolation" in args.only:
            attempt(results, "cpu_isolation", http_bench.isolation, *loads)
        if "spread" in args.only:
            spread_args = (args.spread_requests, args.wrk_rounds, args.wrk_seconds)
            attempt(results, "spread", spread_bench.run, Path(logs), *spread_args, DEFAULT_BALANCE)
    if "spread" in args.only:
        write_spread(results, args.out, started)
    if "dashboard" in args.only:
        with tempfile.TemporaryDirectory() as logs:
            window = args.dashboard_window
            attempt(results, "dashboard", dashboard_bench.run, api, window, Path(logs))
        write_own("dashboard", results, args.out, dashboard_bench.markdown)
    if "profile" in args.only:
        attempt(results, "profile", profile, args.out)
    if "efficiency" in args.only:
        thread.join(args.window + 400)
        results["operator_efficiency"] = {"steady_state": steady.get("result", {})}
    if "controller" in args.only:
        attempt(
            results,
            "master_vs_controller",
            controller_bench.run,
            api,
            args.controller_rounds,
            args.heals,
        )
    if "efficiency" in args.only:
        attempt(results["operator_efficiency"], "burst", efficiency.burst, api)
    if set(args.only) <= {"spread", "dashboard"}:
        return 0  # their own files: such a run must not replace the full latest.md
    results["total_run_s"] = round(time.monotonic() - started, 1)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "latest.md").write_text(report.markdown(results))
    log(f"done in {results['total_run_s']} s: {args.out / 'latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
