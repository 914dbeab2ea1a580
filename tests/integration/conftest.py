"""Real processes on loopback: the worker's gunicorn arbiter, Debian's redis-server, and a
control plane (etcd + kube-apiserver + kube-controller-manager) built by the toolchain.

Each fixture starts its process in a new session and stops it by pid at teardown, bounded in
time. Children run with a temporary cwd: `python -m` puts the cwd on sys.path, and the repo
root's `operator/` folder must never shadow the standard library.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from support.control_plane import ControlPlane, free_port

REDIS_SERVER = "/usr/bin/redis-server"
BOOT_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0

# The worker reads these; a developer's own shell must not leak into a test's worker.
_WORKER_ENV = (
    "WORKER_PROCESSES",
    "WORKER_PROCESSES_FILE",
    "PORT",
    "GRACEFUL_TIMEOUT",
    "DRAIN_DELAY",
    "WORKER_TIMEOUT",
    "MAX_REQUESTS",
    "WORKERLAB_LAB_MODE",
    "REDIS_URL",
    "POD_NAME",
    "WORKERLAB_STATE_DIR",
    "PROMETHEUS_MULTIPROC_DIR",
)


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    return free_port()


@dataclass
class RunningWorker:
    """A `python -m workerlab.worker` arbiter with its processes, on 127.0.0.1."""

    proc: subprocess.Popen
    port: int
    state_dir: Path
    log_path: Path
    processes: int
    _log: object = field(repr=False, default=None)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def arbiter_pid(self) -> int:
        return self.proc.pid

    def request(self, method: str, path: str, timeout: float = 10.0, **kw) -> httpx.Response:
        # A fresh connection per request, so the kernel picks a process each time.
        return httpx.request(method, self.base_url + path, timeout=timeout, **kw)

    def get(self, path: str, **kw) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> httpx.Response:
        return self.request("POST", path, **kw)

    def alive_pids(self) -> set[int]:
        body = self.get("/processes", timeout=5.0).json()
        return {p["pid"] for p in body["processes"] if p["alive"]}

    def wait_for_alive(self, predicate, timeout: float, what: str) -> tuple[set[int], float]:
        """Poll /processes until predicate(alive pids) holds; returns (pids, seconds waited)."""
        started = time.monotonic()
        last: set[int] = set()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                pytest.fail(f"arbiter exited ({self.proc.returncode}) while {what}\n{self.logs()}")
            try:
                last = self.alive_pids()
            except httpx.TransportError:
                pass  # a process that is going down may reset the connection; ask again
            else:
                if predicate(last):
                    return last, time.monotonic() - started
            time.sleep(0.1)
        pytest.fail(f"timed out after {timeout}s {what}; last alive pids {last}\n{self.logs()}")

    def logs(self) -> str:
        try:
            return self.log_path.read_text()[-6000:]
        except OSError:
            return "(no log)"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # our own session: arbiter + children
                self.proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
        return self.proc.returncode


class WorkerLauncher:
    """launcher(processes=2, lab_mode=True, **ENV) -> a booted RunningWorker."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._started: list[RunningWorker] = []

    def __call__(self, processes: int = 2, lab_mode: bool = True, **env_overrides) -> RunningWorker:
        home = self._tmp.mktemp("worker")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in _WORKER_ENV}
        env.update(
            WORKER_PROCESSES=str(processes),
            WORKERLAB_LAB_MODE="true" if lab_mode else "false",
            WORKERLAB_STATE_DIR=str(home / "state"),
            POD_NAME="test-pod",
            DRAIN_DELAY="0",
            GRACEFUL_TIMEOUT="10",
            TMPDIR=str(home),
        )
        env.update({k: str(v) for k, v in env_overrides.items()})
        log_path = home / "worker.log"
        log = log_path.open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "workerlab.worker", "--bind", f"127.0.0.1:{port}"],
            cwd=home,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = RunningWorker(proc, port, home / "state", log_path, processes, log)
        self._started.append(worker)
        worker.wait_for_alive(
            lambda pids: len(pids) == processes, BOOT_TIMEOUT_S, f"booting {processes} processes"
        )
        return worker

    def stop_all(self) -> None:
        for worker in self._started:
            worker.stop()


@pytest.fixture
def start_worker(tmp_path_factory) -> Iterator[WorkerLauncher]:
    launcher = WorkerLauncher(tmp_path_factory)
    yield launcher
    launcher.stop_all()


@pytest.fixture(scope="module")
def lab_worker(tmp_path_factory) -> Iterator[RunningWorker]:
    """One 2-process lab-mode worker shared by a module's tests that leave the arbiter running."""
    launcher = WorkerLauncher(tmp_path_factory)
    try:
        yield launcher(processes=2, lab_mode=True)
    finally:
        launcher.stop_all()


@pytest.fixture(scope="module")
def plain_worker(tmp_path_factory) -> Iterator[RunningWorker]:
    """A 1-process worker with lab mode off (the default a user gets)."""
    launcher = WorkerLauncher(tmp_path_factory)
    try:
        yield launcher(processes=1, lab_mode=False)
    finally:
        launcher.stop_all()


class RedisServer:
    """A real redis-server on a loopback port, no persistence; `restart()` keeps the port (and,
    like a Redis pod scaled to 0 and back, loses the data)."""

    def __init__(self, home: Path) -> None:
        self.exe = shutil.which("redis-server") or REDIS_SERVER
        if not Path(self.exe).exists():
            pytest.fail(
                "redis-server is not installed: `make integration` installs it "
                "(or apt-get install redis-server)"
            )
        self.home = home
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # --save "" and no AOF: nothing is written outside the tmp dir, nothing outlives the test.
        args = f"--port {self.port} --bind 127.0.0.1 --appendonly no --daemonize no".split()
        with (self.home / "redis.log").open("a") as log:
            self.proc = subprocess.Popen(
                [self.exe, *args, "--dir", str(self.home), "--save", ""],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_for_redis(self.port, self.proc)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A real redis-server on a free loopback port, no persistence; stopped at session end."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    """A redis-server of this test's own, which the test may restart."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _wait_for_redis(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"redis-server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    pytest.fail("redis-server did not answer PING within 10s")


# --- a control plane without nodes ---------------------------------------------------------------
# The launcher is shared with the scale benchmark (bench/scale/): tests/support/control_plane.py.


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory) -> Iterator[ControlPlane]:
    """A fresh control plane per test module, stopped after it."""
    plane = ControlPlane(tmp_path_factory.mktemp("control-plane"))
    try:
        try:
            plane.start()
        except RuntimeError as error:
            pytest.fail(str(error))
        yield plane
    finally:
        plane.stop()
