"""What every command shares: the consoles, one-line errors, and the cluster options."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from workerlab.common.errors import WorkerlabError
from workerlab.common.kube import Kube, resolve

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])

NamespaceOption = typer.Option(
    None,
    "--namespace",
    "-n",
    help="namespace of the lab's WorkerClusters (default: the context's namespace, or workerlab)",
    show_default=False,
)
ContextOption = typer.Option(
    None,
    "--context",
    help="kubectl context (default: $WORKERLAB_KUBE_CONTEXT, else a current `workerlab-NAME` "
    "context from `workerlab class add`, else kind-workerlab)",
    show_default=False,
)


def friendly(command: F) -> F:
    """Turn known problems into one red line (+ a hint) and the right exit code, no traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except WorkerlabError as error:
            err.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True)
            if error.hint:
                err.print(f"[dim]hint:[/] {escape(error.hint)}", soft_wrap=True)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def kube_for(namespace: str | None, context: str | None) -> Kube:
    """kubectl pinned to one context and namespace (see `workerlab.common.kube` for the rules)."""
    return resolve(context, namespace)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
