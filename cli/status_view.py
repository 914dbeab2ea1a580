"""`workerlab status`: both levels of the master-worker pattern in one view.

Cluster level: each WorkerCluster (the operator's "workers" are its pods). Pod level: each pod's
processes as its gunicorn arbiter reports them on GET /processes, read through the API server's
pod proxy so it works from the host without port-forwards.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from workerlab.api.objects import worker_port
from workerlab.api.resource import LABEL_TEMPLATE_HASH
from workerlab.cli.errors import WorkerlabError
from workerlab.cli.kube import Kube


@dataclass
class ProcessRow:
    pid: int
    index: int | None
    uptime_s: float | None
    requests_served: int | None
    alive: bool
    in_flight: int | None = None


@dataclass
class PodRow:
    name: str
    phase: str
    ready: bool
    restarts: int
    node: str | None
    template_hash: str | None
    terminating: bool = False
    waiting_reason: str | None = None
    arbiter_pid: int | None = None
    balance: str | None = None  # how the pod's processes share connections (BALANCE)
    processes: list[ProcessRow] | None = None  # None: not asked, or the pod did not answer
    processes_error: str | None = None

    @property
    def alive_processes(self) -> int | None:
        if self.processes is None:
            return None
        return sum(1 for p in self.processes if p.alive)


@dataclass
class ClusterView:
    name: str
    namespace: str
    desired: int
    processes_per_pod: int
    ready_replicas: int
    ready_processes: int | None
    phase: str | None
    conditions: dict[str, str]  # type -> "True (Reason)"
    pods: list[PodRow] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def pod_row(pod: dict) -> PodRow:
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    containers = status.get("containerStatuses") or []
    waiting = next(
        (
            c["state"]["waiting"].get("reason")
            for c in containers
            if (c.get("state") or {}).get("waiting")
        ),
        None,
    )
    return PodRow(
        name=meta.get("name", "?"),
        phase=status.get("phase", "Unknown"),
        ready=any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        ),
        restarts=sum(int(c.get("restartCount", 0)) for c in containers),
        node=spec.get("nodeName"),
        template_hash=(meta.get("labels") or {}).get(LABEL_TEMPLATE_HASH),
        terminating=meta.get("deletionTimestamp") is not None,
        waiting_reason=waiting,
    )


def process_rows(report: dict, now: float | None = None) -> list[ProcessRow]:
    now = time.time() if now is None else now
    rows = []
    for record in report.get("processes") or []:
        started = record.get("started_at")
        rows.append(
            ProcessRow(
                pid=int(record["pid"]),
                index=record.get("index"),
                uptime_s=round(now - started, 1) if record.get("alive") and started else None,
                requests_served=record.get("requests_served"),
                alive=bool(record.get("alive")),
                in_flight=record.get("in_flight"),
            )
        )
    return rows


def conditions_of(wc: dict) -> dict[str, str]:
    out = {}
    for c in (wc.get("status") or {}).get("conditions") or []:
        reason = f" ({c['reason']})" if c.get("reason") else ""
        out[c.get("type", "?")] = f"{c.get('status', '?')}{reason}"
    return out


def cluster_view(wc: dict, pods: list[dict]) -> ClusterView:
    spec, status = wc.get("spec") or {}, wc.get("status") or {}
    return ClusterView(
        name=wc["metadata"]["name"],
        namespace=wc["metadata"].get("namespace", ""),
        desired=int(spec.get("replicas", 0)),
        processes_per_pod=int(spec.get("processesPerPod", 0)),
        ready_replicas=int(status.get("readyReplicas") or 0),
        ready_processes=status.get("readyProcesses"),
        phase=status.get("phase"),
        conditions=conditions_of(wc),
        pods=[pod_row(p) for p in pods],
    )


def attach_processes(kube: Kube, view: ClusterView, port: int) -> None:
    for row in view.pods:
        if row.phase != "Running" or row.terminating:
            continue
        try:
            report = kube.proxy_get(row.name, port, "/processes", timeout=5)
        except WorkerlabError as error:
            row.processes_error = str(error)
            continue
        row.arbiter_pid = report.get("arbiter_pid")
        row.balance = report.get("balance")
        row.processes = process_rows(report)


def gather(kube: Kube, name: str | None = None, processes: bool = True) -> list[ClusterView]:
    wcs = [kube.worker_cluster(name)] if name else kube.worker_clusters()
    views = []
    for wc in wcs:
        view = cluster_view(wc, kube.pods_of(wc["metadata"]["name"]))
        if processes:
            attach_processes(kube, view, worker_port(wc))
        views.append(view)
    return views


def _fmt_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def render(views: list[ClusterView], console: Console) -> None:
    if not views:
        console.print("no WorkerClusters in this namespace (kubectl apply -f manifests/samples/)")
        return
    for view in views:
        conds = ", ".join(f"{k}={v}" for k, v in view.conditions.items()) or "no conditions yet"
        tree = Tree(
            f"[bold]wc/{view.name}[/]  {view.ready_replicas}/{view.desired} pods ready, "
            f"{view.ready_processes if view.ready_processes is not None else '?'} processes "
            f"ready ({view.processes_per_pod}/pod)  phase={view.phase or '?'}  [dim]{conds}[/]"
        )
        for pod in view.pods:
            state = "[green]Ready[/]" if pod.ready else f"[yellow]{pod.phase}[/]"
            if pod.terminating:
                state = "[red]Terminating[/]"
            extra = f" {pod.waiting_reason}" if pod.waiting_reason else ""
            branch = tree.add(
                f"pod {pod.name}  {state}{extra}  restarts={pod.restarts}  node={pod.node or '-'}"
                f"  hash={pod.template_hash or '-'}"
                + (f"  arbiter pid={pod.arbiter_pid}" if pod.arbiter_pid else "")
                + (f"  balance={pod.balance}" if pod.balance else "")
            )
            if pod.processes_error:
                branch.add(f"[dim]processes unknown: {pod.processes_error}[/]")
            if pod.processes:
                table = Table(box=None, pad_edge=False, show_edge=False)
                for column in ("pid", "slot", "uptime", "requests", "in flight", "state"):
                    table.add_column(column, justify="right" if column != "state" else "left")
                for p in pod.processes:
                    table.add_row(
                        str(p.pid),
                        "-" if p.index is None else str(p.index),
                        _fmt_uptime(p.uptime_s),
                        "-" if p.requests_served is None else str(p.requests_served),
                        "-" if p.in_flight is None else str(p.in_flight),
                        "alive" if p.alive else "[dim]exited[/]",
                    )
                branch.add(table)
        console.print(tree)
