"""The `workerlab` command line. Subcommands are grouped by what a learner does."""

from __future__ import annotations

import os
import subprocess

import typer

from workerlab.cli.commands.chaos import chaos_app
from workerlab.cli.commands.class_ import class_app
from workerlab.cli.commands.dashboard import dashboard
from workerlab.cli.commands.lab import lab_app
from workerlab.cli.commands.load import load
from workerlab.cli.commands.status import status
from workerlab.common.errors import WorkerlabError
from workerlab.common.paths import repo_root

app = typer.Typer(
    help="workerlab: the master-worker pattern, on Kubernetes, for real.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    add_completion=False,
)

# `worker` and `operator` hand every argument, --help included, to the component's own parser.
_PASS_THROUGH = {
    "allow_extra_args": True,
    "ignore_unknown_options": True,
    "help_option_names": [],
}


@app.command(context_settings=_PASS_THROUGH)
def worker(ctx: typer.Context) -> None:
    """Run the worker (gunicorn arbiter + FastAPI processes) locally.

    Example: WORKER_PROCESSES=2 workerlab worker
    """
    from workerlab.worker.__main__ import main as worker_main

    raise typer.Exit(worker_main(ctx.args, prog="workerlab worker"))


@app.command(context_settings=_PASS_THROUGH)
def operator(ctx: typer.Context) -> None:
    """Run the operator locally against the current kubeconfig.

    Example: workerlab operator --namespace workerlab
    """
    from workerlab.operator.__main__ import main as operator_main

    raise typer.Exit(operator_main(ctx.args))


def _run_script(name: str, env: dict[str, str] | None = None) -> int:
    try:
        root = repo_root()
    except WorkerlabError as error:
        typer.secho(f"error: {error}; {error.hint}", fg="red", err=True)
        raise typer.Exit(2) from None
    return subprocess.call(
        ["bash", str(root / "hack" / name)], cwd=root, env={**os.environ, **(env or {})}
    )


MAX_NODES = 5  # kind nodes are containers sharing the machine's cores


@app.command()
def up(
    nodes: int | None = typer.Option(
        None,
        "--nodes",
        min=1,
        max=MAX_NODES,
        help="nodes of a new cluster: 1 control plane + N-1 workers (default 1, or what the "
        "running cluster has)",
        show_default=False,
    ),
) -> None:
    """Bring up the lab: docker, kind cluster `workerlab`, images, CRD, operator, sample.

    Idempotent: a second run only checks each step. Every long step shows progress and
    whether it was a cache hit. `--nodes 3` makes a cluster of one control plane and two
    workers (pods spread over them; a machine can be lost); a running cluster with another
    node count is kept, with a message: `workerlab down` first to change it.

    Example: workerlab up --nodes 3
    """
    env = {"WORKERLAB_NODES": str(nodes)} if nodes else None
    raise typer.Exit(_run_script("up.sh", env))


@app.command()
def down() -> None:
    """Remove the lab's kind cluster (images and build caches stay for a fast next `up`).

    Example: workerlab down
    """
    raise typer.Exit(_run_script("down.sh"))


app.command()(status)
app.command()(load)
app.command()(dashboard)
app.add_typer(chaos_app, name="chaos")
app.add_typer(lab_app, name="lab")
app.add_typer(class_app, name="class")


def main() -> None:
    app()
