"""The `workerlab` command line. Subcommands are grouped by what a learner does."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

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


def _repo_root() -> Path:
    """The checkout holding hack/: the lab environment is driven by its scripts."""
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for candidate in (start, *start.parents):
            if (candidate / "hack" / "up.sh").is_file():
                return candidate
    typer.secho(
        "error: cannot find the workerlab checkout (hack/up.sh); run this from inside it",
        fg="red",
        err=True,
    )
    raise typer.Exit(2)


def _run_script(name: str) -> int:
    root = _repo_root()
    env = dict(os.environ)
    env.setdefault("PATH", "")
    return subprocess.call(["bash", str(root / "hack" / name)], cwd=root, env=env)


@app.command()
def up() -> None:
    """Bring up the lab: docker, kind cluster `workerlab`, images, CRD, operator, sample.

    Idempotent: a second run only checks each step. Every long step shows progress and
    whether it was a cache hit.

    Example: workerlab up
    """
    raise typer.Exit(_run_script("up.sh"))


@app.command()
def down() -> None:
    """Remove the lab's kind cluster (images and build caches stay for a fast next `up`).

    Example: workerlab down
    """
    raise typer.Exit(_run_script("down.sh"))


def main() -> None:
    app()
