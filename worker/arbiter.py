"""gunicorn's arbiter as the pod's master: bind once, fork N processes, re-fork the dead.

The seed's `cluster.fork()` is `spawn_worker`, its `cluster.on('exit')` is `child_exit` below.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import sys
import time

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from workerlab.api import exits
from workerlab.worker import siblings
from workerlab.worker.accept import accept_in_turn
from workerlab.worker.config import ConfigError, Settings, read_processes_file

HEARTBEAT_S = 1.0
# The arbiter's loop wakes at least this often (gunicorn's: every 1 s) to follow the count file:
# a change in place starts within a quarter second of the kubelet writing it.
TICK_S = 0.25
# A process told to stop closes its listener, then waits this long before uvicorn's shutdown
# closes every connection without a request in progress: a connection it accepted just before
# has sent its request by then, which is served instead of reset (seen when retiring processes
# under fresh-connection load: one request in ~300 failed with "disconnected").
SETTLE_S = 0.5


def plain_sockets(listeners: list) -> list[socket.socket]:
    """The `socket.socket` objects inside gunicorn's listener wrappers (gunicorn.sock.BaseSocket).

    uvloop's server takes over the file descriptor it serves: on close, libuv closes the fd
    and uvloop *detaches* a real `socket.socket` so nothing closes it twice. A gunicorn wrapper is
    not a `socket.socket`, so uvloop calls its `close()` instead, on an fd libuv already
    closed: gunicorn logged `Error while closing socket [Errno 9] Bad file descriptor` at every
    process's shutdown (and a second close of a reused fd number could close another file).
    """
    return [getattr(listener, "sock", listener) for listener in listeners]


class SettlingServer(Server):
    """uvicorn's Server, but stops accepting SETTLE_S before its shutdown (see SETTLE_S)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        await asyncio.sleep(SETTLE_S)
        await super().shutdown(sockets)


class HeartbeatUvicornWorker(UvicornWorker):
    """uvicorn-worker, heartbeating every second instead of every WORKER_TIMEOUT/2.

    The arbiter kills a process whose last heartbeat is older than WORKER_TIMEOUT. With the
    stock interval (5 s of the default 10), a bounded 5 s /work/cpu right after a quiet spell
    could be taken for a hang; with 1 s, only a real hang (/hang) trips the watchdog.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.config.timeout_notify = min(self.config.timeout_notify, HEARTBEAT_S)
        # Stock uvicorn-worker leaves uvicorn's own bound unset: a retired process holding a
        # long-lived connection then waited for the arbiter's SIGKILL. Same bound as gunicorn's.
        self.config.timeout_graceful_shutdown = self.cfg.graceful_timeout
        self._server: Server | None = None

    async def _serve(self) -> None:
        # As UvicornWorker._serve, but keeping the server so SIGQUIT can reach it.
        self.config.app = self.wsgi
        self._server = SettlingServer(config=self.config)
        self._install_sigquit_handler()
        if not self.cfg.reuse_port:  # BALANCE=shared: one idle process per connection, in turn
            accept_in_turn(asyncio.get_running_loop())
        await self._server.serve(sockets=plain_sockets(self.sockets))
        if not self._server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)

    def handle_exit(self, sig, frame) -> None:
        # The arbiter's quick stop (SIGINT/SIGQUIT to it) sends SIGQUIT; stock uvicorn-worker only
        # flips a flag uvicorn never reads, so processes lingered until GRACEFUL_TIMEOUT's SIGKILL.
        # (Only should_exit: force_exit would skip the app's lifespan shutdown.)
        super().handle_exit(sig, frame)
        if self._server is not None:
            self._server.should_exit = True


WORKER_CLASSES = {
    "uvicorn": f"{__name__}.HeartbeatUvicornWorker",  # uvloop + httptools
    "asgi": "gunicorn.workers.gasgi.ASGIWorker",  # gunicorn's native asyncio ASGI worker
}
DEFAULT_WORKER_CLASS = "uvicorn"  # faster on `/` when measured with wrk: see docs/worker.md


class DrainingArbiter(Arbiter):
    """gunicorn's arbiter with two additions.

    Draining: on SIGTERM, first turn every process's /readyz to 503, keep serving DRAIN_DELAY
    seconds so the Service/Ingress stop routing here, then stop gracefully (in-flight requests
    finish within GRACEFUL_TIMEOUT).

    A count changed in place: the arbiter follows WORKER_PROCESSES_FILE (the operator's pod
    annotation, through the downward API) at every turn of its loop (TICK_S), forking or
    retiring processes. A retired process (the oldest first, as gunicorn's TTOU) gets SIGTERM
    and GRACEFUL_TIMEOUT to finish its requests; it is not a hung process while it drains (it
    no longer heartbeats), and is killed only past that bound. A reload (HUP) reads the file
    again, so it keeps the count.
    """

    def __init__(self, app: WorkerApplication) -> None:
        super().__init__(app)
        self.retiring: dict[int, float] = {}  # pid -> monotonic deadline of its graceful stop
        self._file_error: str | None = None

    def handle_term(self) -> None:
        app: WorkerApplication = self.app
        app.state.mark_draining()
        delay = app.settings.drain_delay
        self.log.info("SIGTERM: readiness is now false; serving %.1fs more, then draining", delay)
        deadline = time.monotonic() + delay
        while (remaining := deadline - time.monotonic()) > 0:
            for sig in self.wait_for_signals(timeout=min(remaining, 0.25)):
                if sig in (signal.SIGINT, signal.SIGQUIT):
                    self.handle_quit()  # the impatient path: stop now (raises StopIteration)
                elif sig == signal.SIGCHLD:
                    self.handle_chld()
            # Still the master during the delay: replace processes that die meanwhile.
            self.murder_workers()
            self.manage_workers()
        raise StopIteration

    def wait_for_signals(self, timeout: float = 1.0) -> list[int]:
        return list(super().wait_for_signals(timeout=min(timeout, TICK_S)))

    def follow_count_file(self) -> None:
        path = self.app.settings.processes_file
        if path is None:
            return
        try:
            count = read_processes_file(path)
        except ConfigError as error:
            if str(error) != self._file_error:  # said once per distinct problem
                self._file_error = str(error)
                self.log.error("%s; keeping %d processes", error, self._get_num_workers())
            return
        self._file_error = None
        running = self._get_num_workers()  # gunicorn's property, untyped
        if count is not None and count != running:
            self.log.info("processes %d -> %d (%s), in place", running, count, path)
            self.num_workers = count

    def manage_workers(self) -> None:
        self.follow_count_file()
        self.retiring = {pid: t for pid, t in self.retiring.items() if pid in self.WORKERS}
        serving = sorted(
            (w.age, pid) for pid, w in self.WORKERS.items() if pid not in self.retiring
        )
        wanted: int = self._get_num_workers()
        for _ in range(wanted - len(serving)):
            self.spawn_worker()
        deadline = time.monotonic() + self.cfg.graceful_timeout
        for _, pid in serving[: max(0, len(serving) - wanted)]:  # the oldest first
            self.retiring[pid] = deadline
            self.kill_worker(pid, signal.SIGTERM)

    def murder_workers(self) -> None:
        now = time.monotonic()
        for pid, deadline in list(self.retiring.items()):
            if now > deadline and pid in self.WORKERS:
                self.log.warning("retired process %s still running after its graceful timeout", pid)
                self.kill_worker(pid, signal.SIGKILL)
        if not self.timeout:
            return
        for pid, worker in list(self.WORKERS.items()):
            if pid in self.retiring:
                continue  # draining: no heartbeats, bounded by its deadline instead
            try:
                if now - worker.tmp.last_update() <= self.timeout:
                    continue
            except (OSError, ValueError):
                continue
            if not worker.aborted:
                self.log.critical("WORKER TIMEOUT (pid:%s)", pid)
                worker.aborted = True
                self.kill_worker(pid, signal.SIGABRT)
            else:
                self.kill_worker(pid, signal.SIGKILL)


class WorkerApplication(BaseApplication):
    def __init__(
        self,
        settings: Settings,
        bind: str,
        worker_class: str = DEFAULT_WORKER_CLASS,
        access_log: bool = False,
        owns_state_dir: bool = False,
    ) -> None:
        assert settings.state_dir is not None, "the entry point resolves the state dir"
        self.settings = settings
        self.state = siblings.StateDir(settings.state_dir)
        self.bind = bind
        self.worker_class = WORKER_CLASSES[worker_class]
        self.access_log = access_log
        self.owns_state_dir = owns_state_dir
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        options = {
            "bind": [self.bind],
            "workers": self.processes_now(),
            "worker_class": self.worker_class,
            "timeout": s.worker_timeout,
            "graceful_timeout": s.graceful_timeout,
            "max_requests": s.max_requests,
            "max_requests_jitter": 0,  # predictable recycling for the labs
            # gunicorn (>= 24) then binds no socket in the arbiter: each process creates its own
            # SO_REUSEPORT socket right after the fork (Arbiter.spawn_worker).
            "reuse_port": s.balance == "reuseport",
            "keepalive": 5,
            "worker_tmp_dir": str(s.state_dir),  # heartbeats; the root filesystem is read-only
            "control_socket_disable": True,  # no control socket to place or to secure
            "proc_name": f"workerlab-worker[{s.pod_name}]",
            "errorlog": "-",
            "accesslog": "-" if self.access_log else None,
            "loglevel": "info",
            "pre_fork": self._pre_fork,
            "post_fork": self._post_fork,
            "child_exit": self._child_exit,
            "on_exit": self._on_exit,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def processes_now(self) -> int:
        """The file's count when it has a valid one (a reload keeps a count changed in place),
        else the count the arbiter started with."""
        path = self.settings.processes_file
        try:
            return (read_processes_file(path) if path else None) or self.settings.processes
        except ConfigError:
            return self.settings.processes

    def load(self):
        # Imported in the forked process, after PROMETHEUS_MULTIPROC_DIR is set.
        from workerlab.worker.app import create_app

        return create_app(self.settings)

    def run(self) -> None:
        DrainingArbiter(self).run()

    # --- hooks (gunicorn calls them with the arbiter as `server`) ------------------------------
    @staticmethod
    def _pre_fork(server, worker) -> None:
        # Give the new process the lowest free slot, so a replacement takes the dead one's index.
        taken = {getattr(w, "workerlab_index", None) for w in server.WORKERS.values()}
        worker.workerlab_index = next(i for i in range(len(taken) + 1) if i not in taken)

    @staticmethod
    def _post_fork(server, worker) -> None:
        siblings.set_current(
            siblings.ProcessIdentity(
                index=worker.workerlab_index, generation=worker.age, arbiter_pid=server.pid
            )
        )

    def _child_exit(self, server, worker) -> None:
        from prometheus_client import multiprocess

        # `aborted` is gunicorn's mark for a process its watchdog killed; a process that leaves
        # while the arbiter still has all it wants was removed on purpose (TTOU, reload).
        surplus = worker.pid in server.retiring or len(server.WORKERS) >= server.num_workers
        self.state.mark_dead(
            worker.pid,
            exits.how_it_ended(timed_out=bool(getattr(worker, "aborted", False)), surplus=surplus),
        )
        multiprocess.mark_process_dead(worker.pid, str(self.state.metrics))

    def _on_exit(self, server) -> None:
        if self.owns_state_dir:
            shutil.rmtree(self.state.root, ignore_errors=True)
