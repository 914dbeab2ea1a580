"""`workerlab status`: both levels at a glance."""

from __future__ import annotations

import typer
from rich.markup import escape

from workerlab.api.resource import OPERATOR_LEASE, OPERATOR_NAMESPACE
from workerlab.cli.status_view import render
from workerlab.cli.support import (
    ContextOption,
    NamespaceOption,
    friendly,
    kube_for,
    out,
    print_json,
)
from workerlab.common.errors import WorkerlabError
from workerlab.common.views import active_master, gather
from workerlab.common.wcstate import wait_converged


@friendly
def status(
    name: str = typer.Argument(None, help="a WorkerCluster (default: all in the namespace)"),
    processes: bool = typer.Option(
        True, "--processes/--no-processes", help="ask each pod's arbiter for its processes"
    ),
    wait: float = typer.Option(
        0,
        "--wait",
        min=0,
        max=1800,
        metavar="SECONDS",
        help="first wait (bounded) until NAME has converged",
    ),
    as_json: bool = typer.Option(False, "--json", help="print as JSON"),
    namespace: str | None = NamespaceOption,
    context: str | None = ContextOption,
) -> None:
    """Both levels at a glance: WorkerClusters -> pods -> processes.

    Pods show phase, readiness, restarts, node and template hash; processes (read through the
    API server's pod proxy) show pid, uptime and requests served.

    Example: workerlab status demo --wait 120
    """
    kube = kube_for(namespace, context)
    if wait:
        if not name:
            raise WorkerlabError("--wait needs a NAME", hint="workerlab status demo --wait 120")
        wait_converged(kube, name, wait)
    views = gather(kube, name, processes=processes)
    if as_json:
        print_json([v.to_dict() for v in views])
        return
    master = active_master(kube)
    if master:
        out.print(
            f"cluster-level master: {escape(master)} (holds Lease "
            f"{OPERATOR_NAMESPACE}/{OPERATOR_LEASE}; the other replicas stand by)",
            soft_wrap=True,
        )
    render(views, out)
