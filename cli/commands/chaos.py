"""`workerlab chaos`: break a level on purpose, then name who healed it."""

from __future__ import annotations

import typer
from rich.table import Table

from workerlab.cli import drills, targets
from workerlab.cli.support import (
    ContextOption,
    NamespaceOption,
    friendly,
    kube_for,
    out,
    print_json,
)
from workerlab.common.errors import EXIT_FAILED, WorkerlabError

chaos_app = typer.Typer(
    help="Failure drills: break a level, then see who healed it (arbiter, kubelet, operator).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

TargetArg = typer.Argument(..., help="wc/NAME")
CountOption = typer.Option(1, "--count", "-k", min=1, max=20, help="how many to kill")
TimeoutOption = typer.Option(120.0, "--timeout", min=1, max=900, help="seconds to wait for healing")


def _show(results: list[drills.DrillResult], as_json: bool) -> None:
    if as_json:
        print_json([r.to_dict() for r in results])
    else:
        table = Table(title="who healed it?", title_justify="left")
        for column in ("target", "what we did", "healed by", "after", "evidence"):
            table.add_column(column)
        for r in results:
            layer = f"[green]{r.healed_by}[/]" if r.healed_by else "[red]not healed[/]"
            table.add_row(r.target, r.action, layer, f"{r.seconds}s", "\n".join(r.evidence))
        out.print(table)
    if any(r.healed_by is None for r in results):
        raise typer.Exit(EXIT_FAILED)


@chaos_app.command("kill-process")
@friendly
def kill_process(
    target: str = TargetArg,
    count: int = CountOption,
    timeout: float = TimeoutOption,
    as_json: bool = typer.Option(False, "--json", help="print as JSON"),
    namespace: str | None = NamespaceOption,
    context: str | None = ContextOption,
) -> None:
    """Kill worker processes inside pods (POST /crash in lab mode, else SIGKILL via exec).

    Then wait until it is healed and name the layer from the evidence: the arbiter (new pid,
    restartCount unchanged), the kubelet (restartCount + 1) or the operator (a new pod).

    Example: workerlab chaos kill-process wc/demo --count 2
    """
    if not targets.is_wc_ref(target):
        raise WorkerlabError(f"{target!r}: expected wc/NAME")
    kube = kube_for(namespace, context)
    _show(drills.kill_processes(kube, targets.wc_name(target), count, timeout), as_json)


@chaos_app.command("kill-pod")
@friendly
def kill_pod(
    target: str = TargetArg,
    count: int = CountOption,
    timeout: float = TimeoutOption,
    as_json: bool = typer.Option(False, "--json", help="print as JSON"),
    namespace: str | None = NamespaceOption,
    context: str | None = ContextOption,
) -> None:
    """Delete Ready pods of a WorkerCluster and time the operator replacing them.

    Example: workerlab chaos kill-pod wc/demo --count 1
    """
    if not targets.is_wc_ref(target):
        raise WorkerlabError(f"{target!r}: expected wc/NAME")
    kube = kube_for(namespace, context)
    _show([drills.kill_pods(kube, targets.wc_name(target), count, timeout)], as_json)
