"""`workerlab status`: both levels of the master-worker pattern in one view (the data comes
from `workerlab.common.views`)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from workerlab.api import exits
from workerlab.api.objects import NO_RESTART
from workerlab.common.views import ClusterView


def _fmt_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _processes_line(view: ClusterView) -> str:
    """One truth: the processes this command just read in the pods when it read them (the pod
    lines below); the operator's status figure, read up to its poll period earlier, only said
    beside it when it differs."""
    read = [p for p in view.pods if p.processes is not None and not p.terminating]
    status = view.ready_processes
    if not read:
        figure = "?" if status is None else str(status)
        return f"{figure} processes ready ({view.processes_per_pod}/pod, the operator's status)"
    alive = sum(1 for pod in read for p in pod.processes or [] if p.alive)
    line = f"{alive} processes alive ({view.processes_per_pod}/pod, read now in {len(read)} pods)"
    if status is not None and status != alive:
        line += f" [dim](the operator's status says {status}: its last read, up to 10 s old)[/]"
    return line


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def render(views: list[ClusterView], console: Console) -> None:
    if not views:
        console.print(
            "no WorkerClusters in this namespace: `workerlab lab reset 4` makes the sample demo"
            " here (or kubectl apply -f manifests/samples/demo.yaml on your own cluster)"
        )
        return
    for view in views:
        conds = ", ".join(f"{k}={v}" for k, v in view.conditions.items()) or "no conditions yet"
        tree = Tree(
            f"[bold]wc/{view.name}[/]  {view.ready_replicas}/{view.desired} pods ready, "
            f"{_processes_line(view)}  phase={view.phase or '?'}  [dim]{conds}[/]"
        )
        if view.autoscaler:
            tree.add(f"[cyan]{view.autoscaler.describe()}[/]")
        for node, heartbeat in view.lost_nodes.items():
            tree.add(
                f"[red]node {node} lost[/]: no heartbeat since {heartbeat}; its pods were "
                "replaced on the other nodes"
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
            if pod.in_place:
                branch.add(f"[cyan]changing in place: {escape(pod.in_place)}[/]")
            elif pod.changed_in_place_at:
                branch.add(
                    f"[cyan]changed in place at {pod.changed_in_place_at}: told "
                    f"{pod.processes_told} processes, {NO_RESTART}[/] [dim](same pod, same "
                    "arbiter)[/]"
                )
            if pod.processes_error:
                branch.add(f"[dim]processes unknown: {pod.processes_error}[/]")
            if pod.processes:
                table = Table(box=None, pad_edge=False, show_edge=False)
                for column in ("pid", "slot", "uptime", "requests", "in flight"):
                    table.add_column(column, justify="right")
                # The machinery's probes, polls and scrapes: shown, dim, never in "requests".
                table.add_column("control", justify="right", style="dim")
                table.add_column("state")
                for p in pod.processes:
                    table.add_row(
                        str(p.pid),
                        _count(p.index),
                        _fmt_uptime(p.uptime_s),
                        _count(p.requests_served),
                        _count(p.in_flight),
                        _count(p.control_served),
                        "alive" if p.alive else f"[dim]{escape(exits.short_label(p.exit))}[/]",
                    )
                branch.add(table)
        console.print(tree)
