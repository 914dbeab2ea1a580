"""The `workerlab` command line. Subcommands are grouped by what a learner does."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="workerlab: the master-worker pattern, on Kubernetes, for real.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(ctx: typer.Context) -> None:
    """Run the worker (gunicorn arbiter + FastAPI processes) locally.

    Example: WORKER_PROCESSES=2 workerlab worker
    """
    from workerlab.worker.__main__ import main as worker_main

    raise typer.Exit(worker_main(ctx.args))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def operator(ctx: typer.Context) -> None:
    """Run the operator locally against the current kubeconfig.

    Example: workerlab operator --namespace workerlab
    """
    from workerlab.operator.__main__ import main as operator_main

    raise typer.Exit(operator_main(ctx.args))


def main() -> None:
    app()
