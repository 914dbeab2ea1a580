"""Lab 1: a CPU-bound request blocks everyone when there is one process, not when there are N;
and how new connections reach the processes (BALANCE=shared vs reuseport).

Evidence: the learner's own `workerlab load` runs against a local worker, as recorded: with
`--probe /` on /work/cpu, one with 1 process and one with 2 or more; and on fresh connections,
one per BALANCE mode (`workerlab load` records the process count and the mode /processes said).
"""

from __future__ import annotations

from workerlab.labs.checking import CheckContext, Checker, Item, item

BLOCKED_MIN_MS = 40.0  # with 1 process the probe waits behind ~half a CPU request on average
SPEEDUP_MIN = 3.0
BALANCE_MODES = ("shared", "reuseport")
SPREAD_MIN_ANSWERED = 200  # fewer requests say little about how the kernel spreads them


def gather(ctx: CheckContext) -> dict:
    return {"runs": ctx.runs()}


def _cpu_probe_runs(runs: list[dict], one: bool) -> list[dict]:
    chosen = []
    for run in runs:
        processes = run.get("target_processes")
        if run.get("wc") or processes is None or "/work/cpu" not in str(run.get("path")):
            continue
        if (processes == 1) == one and (run.get("summary") or {}).get("probe_latency_ms", {}).get(
            "p50_ms"
        ) is not None:
            chosen.append(run)
    return chosen


def _has_spare_process(run: dict) -> bool:
    """Fewer connections than processes: one process stays free for the probe. (A run with as
    many connections as processes, lab question 2, shows the opposite lesson.)"""
    concurrency, processes = run.get("concurrency"), run.get("target_processes")
    return concurrency is None or processes is None or concurrency < processes


def _probe_p50(run: dict) -> float:
    return float(run["summary"]["probe_latency_ms"]["p50_ms"])


def evaluate(facts: dict) -> list[Item]:
    runs = facts["runs"]
    single, measured = _cpu_probe_runs(runs, True), _cpu_probe_runs(runs, False)
    multi = [r for r in measured if _has_spare_process(r)]
    saturated = [r for r in measured if not _has_spare_process(r)]
    how = (
        "workerlab load 'http://127.0.0.1:8001/work/cpu?ms=200' --requests 20 --concurrency 1 "
        "--probe /"
    )
    items = [
        item(
            "measured a 1-process worker under CPU load, with a probe",
            single,
            f"{len(single)} run(s)",
            f"start it with WORKER_PROCESSES=1 and run: {how}",
        ),
        item(
            "measured a worker with 2+ processes under the same load, one process to spare",
            multi,
            f"{len(multi)} run(s)"
            + (f", and {len(saturated)} with every process busy" if saturated else ""),
            "restart it with WORKER_PROCESSES=2 (on port 8002) and run the same load there, "
            "with --concurrency below the process count"
            + (
                " (your runs there kept every process busy, so the probe had to wait)"
                if saturated
                else ""
            ),
        ),
    ]
    if not (single and multi):
        return items + balance_items(runs)
    one, many = single[-1], multi[-1]
    one_ms, many_ms = _probe_p50(one), _probe_p50(many)
    items.append(
        item(
            "with 1 process, other users wait behind the CPU work",
            one_ms >= BLOCKED_MIN_MS,
            f"probe p50 {one_ms:.0f} ms",
            "the probe did not wait: use a slower request (ms=200) and --concurrency 1 so the "
            "only process is always busy",
        )
    )
    items.append(
        item(
            f"with {many.get('target_processes')} processes, a free process answers at once",
            many_ms * SPEEDUP_MIN <= one_ms,
            f"probe p50 {many_ms:.0f} ms vs {one_ms:.0f} ms",
            "keep --concurrency below the process count, so one process stays free for the probe",
        )
    )
    return items + balance_items(runs)


def _spread_runs(runs: list[dict], mode: str) -> list[dict]:
    """Runs on fresh connections against a local worker with 2+ processes in `mode`."""
    return [
        run
        for run in runs
        if not run.get("wc")
        and run.get("target_balance") == mode
        and run.get("keepalive") is False
        and (run.get("target_processes") or 0) >= 2
        and (run.get("summary") or {}).get("ok", 0) >= SPREAD_MIN_ANSWERED
    ]


def _spread_detail(run: dict) -> str:
    summary = run["summary"]
    jain = (summary.get("fairness") or {}).get("jain_processes")
    # Every process the worker reported before the run counts, a silent one as a zero.
    shares = dict.fromkeys(summary.get("expected_processes") or [], 0) | summary["by_process"]
    per_process = "/".join(str(n) for n in sorted(shares.values()))
    return (
        f"{summary['ok']} requests over {run['target_processes']} processes: {per_process} "
        f"(Jain's index {jain}; 1.0 = even)"
    )


def balance_items(runs: list[dict]) -> list[Item]:
    """Part 2: the same load in both modes; what the learner saw is shown, not judged (the
    spread depends on what else the machine runs)."""
    items = []
    for mode, port in zip(BALANCE_MODES, (8003, 8004), strict=True):
        chosen = _spread_runs(runs, mode)
        items.append(
            item(
                f"measured how new connections spread with BALANCE={mode}",
                chosen,
                _spread_detail(chosen[-1]) if chosen else "",
                f"WORKER_PROCESSES=3 BALANCE={mode} workerlab worker --bind 127.0.0.1:{port} &, "
                f"then: workerlab load http://127.0.0.1:{port}/ --requests 600 --concurrency 16 "
                "--no-keepalive",
            )
        )
    return items


def reset(ctx: CheckContext) -> list[str]:
    return [
        "local lab: stop any worker left from an earlier try (kill $ONE $TWO in the shell that "
        "started them, and $SHARED $REUSE from part 2), so ports 8001-8004 are free, then "
        "follow the steps"
    ]


CHECKER = Checker(gather, evaluate, reset)
