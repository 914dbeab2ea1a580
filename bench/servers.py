"""The three servers compared on loopback, each started with N processes on a free port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from common import BENCH_DIR

SERVERS = ("worker", "minimal_asgi", "node_cluster")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(server: str, port: int) -> list[str]:
    bind = ["--bind", f"127.0.0.1:{port}"]
    if server == "worker":
        return [sys.executable, "-m", "workerlab.worker", *bind]
    if server == "minimal_asgi":
        return [sys.executable, str(BENCH_DIR / "minimal_asgi.py"), *bind]
    if server == "fastapi_hello":
        return [sys.executable, str(BENCH_DIR / "fastapi_hello.py"), *bind]
    return ["node", str(BENCH_DIR / "node-cluster" / "server.js")]


def _wait_serving(port: int, processes: int, timeout: float = 30) -> None:
    """Until `processes` distinct pids have answered (every process forked and listening)."""
    pids: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            headers = {"Connection": "close"}
            request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers=headers)
            with urllib.request.urlopen(request, timeout=2) as response:
                body = response.read().decode()
            pids.add(body.split('"pid":')[1].split(",")[0].split("}")[0].strip())
            if len(pids) >= processes:
                return
        time.sleep(0.05)
    if not pids:
        raise TimeoutError(f"server on {port} did not answer within {timeout}s")
    # The kernel may keep handing fresh connections to the same process: one pid is enough
    # once the arbiter had the time to fork the others.
    time.sleep(1)


@dataclass(frozen=True)
class Running:
    port: int
    pid: int  # the master: gunicorn's arbiter or Node's primary

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@contextlib.contextmanager
def serving(
    server: str, processes: int, log_dir: Path, env: dict[str, str] | None = None
) -> Iterator[Running]:
    """`env` adds settings, e.g. BALANCE for the worker or NODE_CLUSTER_SCHED_POLICY for Node."""
    port = free_port()
    extra = env or {}
    env = dict(os.environ, WORKER_PROCESSES=str(processes), WORKERS=str(processes), PORT=str(port))
    env.pop("WORKERLAB_STATE_DIR", None)
    env.update(extra)
    tag = "-".join([server, str(processes), *extra.values()])
    log = (log_dir / f"{tag}.log").open("w")
    proc = subprocess.Popen(
        command(server, port), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        _wait_serving(port, processes)
        yield Running(port, proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()
