"""`workerlab dashboard`: both levels live in a browser, with "who healed it" and the lab."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from pathlib import Path

import typer

from workerlab.cli.support import ContextOption, NamespaceOption, friendly, kube_for, out
from workerlab.common.errors import MissingPrerequisite, WorkerlabError

DEFAULT_PORT = 8080


def _require_web_stack() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise MissingPrerequisite(
            f"the dashboard needs FastAPI and uvicorn ({error.name} is not installed)",
            hint="pip install 'workerlab[dashboard]'  (the dev extra includes it)",
        ) from None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@friendly
def dashboard(
    port: int = typer.Option(DEFAULT_PORT, "--port", min=1, max=65535, help="port on 127.0.0.1"),
    window: float = typer.Option(
        30.0, "--window", min=5, max=600, help="seconds of 'recent requests' per process and pod"
    ),
    poll: float = typer.Option(
        2.5, "--poll", min=1, max=60, help="seconds between /processes polls of each Ready pod"
    ),
    stop_after: float = typer.Option(
        0, "--stop-after", min=0, help="quit after this many seconds (0: run until Ctrl-C)"
    ),
    record: Path | None = typer.Option(
        None,
        "--record",
        help="when it stops, save the last minutes' lanes and timeline to this HTML file "
        "(self-contained: opens with no network, e.g. on a projector later)",
    ),
    namespace: str = NamespaceOption,
    context: str = ContextOption,
) -> None:
    """Serve a live web page of both levels on http://127.0.0.1:PORT/ (it opens nothing itself).

    Open the URL it prints (http://127.0.0.1:PORT/?token=...): only that token gets in (the page
    then holds it as a cookie), so no one else on the machine can see or drive your clusters.

    WorkerClusters, their pods and each pod's processes, updated from watches; a "who healed
    it" timeline (operator, kubelet, arbiter); recent requests per process and pod; buttons to
    scale, delete a pod, kill a process (lab mode), start a bounded load; the current lab and
    its check.

    Example: workerlab dashboard --namespace workerlab --port 8080 --record rollout.html
    """
    _require_web_stack()
    if record is not None:
        _check_record_path(record)
    if not _port_free(port):
        raise WorkerlabError(
            f"127.0.0.1:{port} is already in use", hint="pick another one with --port"
        )
    kube = kube_for(namespace, context)
    kube.kubectl  # noqa: B018  (fail now, clearly, if there is no kubectl)
    token = secrets.token_urlsafe(32)
    out.print(
        f"workerlab dashboard: http://127.0.0.1:{port}/?token={token}  "
        f"(namespace {kube.namespace}, context {kube.context}; open this URL, keep it to "
        "yourself; Ctrl-C stops it)",
        soft_wrap=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(kube, port, token, window, poll, stop_after, record))


def _check_record_path(record: Path) -> None:
    """Refuse now what could only fail when the dashboard stops, the session lost with it."""
    folder = record.parent.resolve()
    if not folder.is_dir():
        raise WorkerlabError(
            f"--record {record}: the folder {record.parent} does not exist",
            hint="give a file in an existing folder",
        )
    if record.is_dir():
        raise WorkerlabError(f"--record {record}: that is a folder", hint="give a file name")
    if not os.access(folder, os.W_OK) or (record.exists() and not os.access(record, os.W_OK)):
        raise WorkerlabError(
            f"--record {record}: not writable by you", hint="give a file in a folder of yours"
        )


def lab_text_for(number: int, namespace: str) -> str:
    """The lab's text as `workerlab lab show N` prints it for the namespace (solution folded)."""
    from workerlab.labs import course

    text = course.for_namespace(course.text(course.get(number)), namespace)
    return course.fold_solution(
        text, f"Folded away: `workerlab lab show {number} --solution` shows it."
    )


async def _serve(
    kube,
    port: int,
    token: str,
    window: float,
    poll: float,
    stop_after: float,
    record: Path | None,
) -> None:
    import uvicorn

    from workerlab.cli.dashboard.actions import KubeActions
    from workerlab.cli.dashboard.app import Hub, create_app
    from workerlab.cli.dashboard.model import Model
    from workerlab.cli.dashboard.source import Source
    from workerlab.labs import course

    hub = Hub(Model(kube.namespace, window_s=window))
    source = Source(kube, hub.model, hub.notify, poll_s=poll)
    app = create_app(
        hub,
        KubeActions(kube),
        port=port,
        token=token,
        context=kube.context,
        lab_numbers=lambda: [
            {"number": lab.number, "title": lab.title, "summary": lab.summary}
            for lab in course.labs()
        ],
        lab_text=lambda n: lab_text_for(n, kube.namespace),
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    feeding = asyncio.create_task(source.run())

    async def deadline() -> None:
        if stop_after > 0:
            await asyncio.sleep(stop_after)
            server.should_exit = True

    timer = asyncio.create_task(deadline())
    started = time.monotonic()
    try:
        await server.serve()
    finally:
        timer.cancel()
        source.stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(feeding, 10)
        out.print(f"dashboard stopped after {time.monotonic() - started:.0f}s")
        if record is not None:
            _save_record(record, hub.model.view(time.time()), kube.context)


def _save_record(path: Path, view: dict, context: str) -> None:
    from workerlab.cli.dashboard.record import record_html

    try:
        path.write_text(record_html(view, context))
    except OSError as error:
        out.print(f"[red]could not save the record to {path}: {error.strerror}[/]")
        return
    pods = len(view["lanes"]["pods"])
    out.print(f"recorded {pods} pods' lanes and {len(view['timeline'])} timeline entries: {path}")
