"""`workerlab load`: bounded load with the distribution over pods and processes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from urllib.parse import urlsplit

import httpx
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from workerlab.api.processes import ProcessesReport
from workerlab.api.traffic import is_control
from workerlab.cli import targets
from workerlab.cli.loadgen import LoadPlan, journal_record, run_load
from workerlab.cli.support import (
    ContextOption,
    NamespaceOption,
    err,
    friendly,
    kube_for,
    out,
    print_json,
)
from workerlab.common import journal
from workerlab.common.errors import EXIT_FAILED, WorkerlabError
from workerlab.common.kube import Kube
from workerlab.common.loadstats import LoadSummary
from workerlab.common.views import gather

MAX_REQUESTS = 1_000_000
MAX_CONCURRENCY = 512
MAX_DURATION_S = 3600


def parse_headers(raw: list[str]) -> dict[str, str]:
    headers = {}
    for entry in raw:
        name, sep, value = entry.partition(":")
        if not sep or not name.strip():
            raise WorkerlabError(f"--header {entry!r} is not 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def report_behind(base_url: str) -> ProcessesReport | None:
    """What the target's /processes reports, or None if it can't say.

    Behind a plain URL that is one pod (a local worker, or whichever pod answered)."""
    try:
        report = httpx.get(f"{base_url.rstrip('/')}/processes", timeout=2, trust_env=False).json()
        return ProcessesReport.from_dict(report)
    except (httpx.HTTPError, ValueError, AttributeError, TypeError, KeyError):
        return None


def live_processes(report: ProcessesReport) -> list[str]:
    """The report's live processes as "pod/pid"."""
    return [f"{report.pod}/{p.pid}" for p in report.alive]


def members_of(kube: Kube, name: str) -> tuple[list[str], list[str] | None]:
    """A WorkerCluster's serving pods, and their live processes as "pod/pid" (each pod's
    /processes through the API server); processes None when no pod could say."""
    view = gather(kube, name, processes=True)[0]
    serving = [pod for pod in view.pods if pod.ready and not pod.terminating]
    known = [pod for pod in serving if pod.processes is not None]
    processes = [f"{pod.name}/{p.pid}" for pod in known for p in pod.processes or [] if p.alive]
    return [pod.name for pod in serving], (processes if known else None)


def whole_percents(counts: dict[str, int]) -> dict[str, int]:
    """Each key's share in whole percent, summing to exactly 100 (largest remainder method):
    rounding each share on its own can show 101% or 99% in total."""
    total = sum(counts.values())
    if total <= 0:
        return dict.fromkeys(counts, 0)
    floors = {key: count * 100 // total for key, count in counts.items()}
    by_remainder = sorted(counts, key=lambda key: counts[key] * 100 % total, reverse=True)
    for key in by_remainder[: 100 - sum(floors.values())]:
        floors[key] += 1
    return floors


def control_note(path: str) -> str | None:
    """Load on a probe or poll path is answered like any other, but the worker counts it as the
    machinery's (api.traffic): say so, or the learner looks for it in `requests` in vain."""
    if not is_control(urlsplit(path).path):
        return None
    return (
        f"note: the worker counts {path} as control traffic (like the kubelet's probes and the "
        "operator's polls): `workerlab status` and the dashboard show it under control, "
        "not requests"
    )


def render(summary: LoadSummary, label: str, path: str) -> None:
    lat, probe = summary.latency, summary.probe
    verdict = "[green]no errors[/]" if summary.errors == 0 else f"[red]{summary.errors} errors[/]"
    out.print(
        f"[bold]{label}{path}[/]: {summary.requests} requests in {summary.elapsed_s:.1f}s "
        f"({summary.rps} req/s, stopped by {summary.stopped_by}), {summary.ok} ok, {verdict}"
    )
    if summary.errors_by_kind:
        out.print("  errors: " + ", ".join(f"{k}={v}" for k, v in summary.errors_by_kind.items()))
    table = Table(title="latency (ms)", title_justify="left")
    for column in ("", "p50", "p90", "p99", "max", "mean"):
        table.add_column(column, justify="right")
    for name, s in (("requests", lat), ("probe", probe)):
        if s.count:
            table.add_row(
                name, *(str(v) for v in (s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms, s.mean_ms))
            )
    out.print(table)
    if summary.by_process:
        dist = Table(title="who answered (pod -> process)", title_justify="left")
        for column in ("pod", "requests", "share", "processes (pid: requests)"):
            dist.add_column(column, justify="left" if column.startswith("p") else "right")
        shares = whole_percents(summary.by_pod)
        for pod, count in summary.by_pod.items():
            procs = {
                k.rsplit("/", 1)[1]: v
                for k, v in summary.by_process.items()
                if k.rsplit("/", 1)[0] == pod
            }
            dist.add_row(
                pod,
                str(count),
                f"{shares[pod]}%",
                "  ".join(f"{pid}: {n}" for pid, n in procs.items()),
            )
        out.print(dist)
        if note := control_note(path):
            out.print(f"[dim]{escape(note)}[/]")
        fair = summary.fairness()
        expected = summary.expected_processes
        over = f" over {len(expected)} live processes, idle ones included" if expected else ""
        out.print(
            f"spread (min/max) across pods {fair['spread_pods']}, across processes "
            f"{fair['spread_processes']}{over}; Jain's index across pods {fair['jain_pods']}, "
            f"across processes {fair['jain_processes']} (1.0 = perfectly even)"
        )
    if probe.count or summary.probe_errors:
        out.print(
            f"probe (a fresh connection every 100 ms): p50 {probe.p50_ms} ms, "
            f"{summary.probe_errors} errors"
        )


@friendly
def load(
    target: str = typer.Argument(..., help="http://127.0.0.1:PORT/PATH or wc/NAME"),
    path: str = typer.Option(None, "--path", "-p", help="request path (default: the URL's, or /)"),
    requests: int = typer.Option(
        200, "--requests", "-r", min=1, max=MAX_REQUESTS, help="stop after this many requests"
    ),
    concurrency: int = typer.Option(
        8, "--concurrency", "-c", min=1, max=MAX_CONCURRENCY, help="requests in flight at once"
    ),
    duration: float = typer.Option(
        60.0,
        "--duration",
        "-d",
        min=0.1,
        max=MAX_DURATION_S,
        help="stop issuing after this many seconds",
    ),
    timeout: float = typer.Option(
        10.0, "--timeout", min=0.1, max=600, help="per-request timeout in seconds"
    ),
    method: str = typer.Option("GET", "--method", "-X", help="HTTP method"),
    keepalive: bool = typer.Option(
        True,
        "--keepalive/--no-keepalive",
        help="reuse connections (a Service balances connections, not requests)",
    ),
    probe: str = typer.Option(
        None,
        "--probe",
        help="also GET this path on a fresh connection every 100 ms and "
        "report its latency: what another user feels meanwhile",
    ),
    header: list[str] = typer.Option([], "--header", "-H", help="extra header 'Name: value'"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    namespace: str | None = NamespaceOption,
    context: str | None = ContextOption,
) -> None:
    """Send bounded load and show which pods and processes answered, errors and latency.

    Bounded in count (--requests) and time (--duration, plus one --timeout); traffic goes to
    127.0.0.1 only. Each run is recorded for `workerlab lab check`. Exit code 1 if any
    request failed.

    Example: workerlab load wc/demo --path '/work/cpu?ms=50' --requests 400 --concurrency 16
    """
    raw_target, url_path = targets.split_url_path(target)
    kube = kube_for(namespace, context)
    found = targets.resolve(raw_target, kube)
    with targets.reach(found, kube) as resolved:
        request_path = path or url_path or "/"
        plan = LoadPlan(
            url=resolved.url(request_path),
            requests=requests,
            concurrency=concurrency,
            method=method.upper(),
            timeout_s=timeout,
            duration_s=duration,
            keepalive=keepalive,
            headers=parse_headers(header),
            probe_url=resolved.url(probe) if probe else None,
        )
        # Asked before the run: a process that then gets nothing must count as a zero.
        expected_pods, expected_processes, balance = None, None, None
        if resolved.wc:
            with contextlib.suppress(WorkerlabError):
                expected_pods, expected_processes = members_of(kube, resolved.wc)
        elif (report := report_behind(resolved.base_url)) is not None:
            expected_processes, balance = live_processes(report), report.balance
        target_processes = (
            None if resolved.wc or expected_processes is None else len(expected_processes)
        )
        started = time.time()
        progress = Progress(
            TextColumn("load"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[bad]}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=as_json,
        )
        with progress:
            task = progress.add_task("load", total=requests, bad="")
            failed = 0

            def tick(sample) -> None:
                nonlocal failed
                failed += 0 if sample.ok else 1
                progress.update(task, advance=1, bad=f"{failed} errors" if failed else "")

            summary = asyncio.run(run_load(plan, tick))
    summary.expected_pods, summary.expected_processes = expected_pods, expected_processes
    record = journal_record(
        plan,
        summary,
        started_at=started,
        ended_at=time.time(),
        target=resolved.label,
        base_url=resolved.base_url,
        wc=resolved.wc,
        namespace=resolved.namespace,
        path=request_path,
        probe=probe,
        target_processes=target_processes,
        target_balance=balance,
    )
    journal.record_run(record)
    if as_json:
        print_json(record)
    else:
        render(summary, resolved.base_url.rstrip("/"), request_path)
    if summary.errors or summary.ok == 0:
        raise typer.Exit(EXIT_FAILED)
