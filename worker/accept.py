"""BALANCE=shared: one listening socket, each new connection offered to one idle process, in turn.

uvloop (libuv) watches the shared socket in every process's epoll: a new connection wakes them
all, and the first one the scheduler runs accepts until the queue is empty. On a busy node that is
whichever process sits on the freer core (measured: 66 / 259 / 275 of 600 with one core busy;
the libuv bundled in uvloop 0.23 no longer reads UV_TCP_SINGLE_ACCEPT, and accepting one connection
per wake-up instead changed nothing: docs/worker.md, "Balancing: measured").

Here each process has a small epoll of its own that holds the shared socket with
EPOLLEXCLUSIVE: the kernel wakes *one* of the processes waiting on it per new connection, the
first in the socket's wait queue. After each wake-up the process registers again, which moves it
to the end of that queue, so the processes take turns whatever core they run on. A thread waits
on that epoll; the accept itself runs on the event loop, which then serves the connection as
uvicorn would (uvloop's connect_accepted_socket).

A process whose event loop is blocked (CPU work) is out of the turn as soon as it has been woken
once: its thread waits for the loop instead of the socket. That one connection may wait in the
queue, but every idle process re-registers at least every RESCUE_S while connections come (and
after each accept), which re-checks the socket, so an idle one takes it within RESCUE_S; with
none accepted for ACTIVE_S, every IDLE_RESCUE_S (at rest nobody is blocked on one). Closing
(SIGTERM, a retired process) stops the accepts at once on the loop; the queue belongs to the one
socket every process holds, so the others take what still waits: nothing is reset.
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

RESCUE_S = 0.01  # while connections come: an idle process re-checks the socket this often
# With no connection accepted for ACTIVE_S, nobody is blocked on one: re-check rarely (idle
# CPU: 10 ms re-checks cost a 2-process pod 13 millicores at rest, a quarter of its request).
ACTIVE_S = 2.0
IDLE_RESCUE_S = 0.25
FIRST_REQUEST_S = 5.0  # at shutdown: time a just-accepted connection gets to send its request
WAIT_S = 0.2  # the thread re-checks `closed` at least this often (bounded waits only)
SUPPORTED = hasattr(select, "EPOLLEXCLUSIVE")  # Linux >= 4.5


class TurnAcceptServer:
    """The part of asyncio.Server uvicorn uses (close, wait_closed), accepting in turn."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol_factory: Callable[[], asyncio.Protocol],
        sock: socket.socket,
    ) -> None:
        self._loop = loop
        self._protocol_factory = protocol_factory
        self._sock = sock
        self._fd = sock.fileno()
        sock.setblocking(False)
        self._epoll = select.epoll()
        self._epoll.register(self._fd, select.EPOLLIN | select.EPOLLEXCLUSIVE)
        self._answered = threading.Event()
        self._closed = False
        self._accepted_at = time.monotonic()  # read by the thread: how often to re-check
        self._tasks: set[asyncio.Future[Any]] = set()
        self._thread = threading.Thread(target=self._wait, name="accept-in-turn", daemon=True)
        self._thread.start()

    # --- the thread ---------------------------------------------------------------------------
    def _ask_loop(self, callback: Callable[[], None]) -> bool:
        """Run `callback` on the loop and wait until it ran; False once closed."""
        self._answered.clear()
        try:
            self._loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the loop is closed
            return False
        while not self._answered.wait(WAIT_S):
            if self._closed:
                return False
        return not self._closed

    def _rescue_every(self) -> float:
        active = time.monotonic() - self._accepted_at < ACTIVE_S
        return RESCUE_S if active else IDLE_RESCUE_S

    def _wait(self) -> None:
        try:
            while not self._closed:
                if self._epoll.poll(self._rescue_every()) and not self._ask_loop(self._accept):
                    break
                # To the end of the socket's wait queue (the other processes come first); and
                # registering again re-checks the socket, so a connection left waiting by a
                # sibling that was woken while its loop was blocked is taken here.
                self._epoll.unregister(self._fd)
                self._epoll.register(self._fd, select.EPOLLIN | select.EPOLLEXCLUSIVE)
        except (OSError, ValueError):  # the socket or the epoll went away at shutdown
            pass
        finally:
            self._epoll.close()

    # --- the loop -----------------------------------------------------------------------------
    def _accept(self) -> None:
        try:
            if self._closed:
                return
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return  # another process took it, or the client gave up
            except OSError as error:  # EMFILE and the like: the next turn tries again
                self._loop.call_exception_handler({"message": "accept failed", "exception": error})
                return
            self._accepted_at = time.monotonic()
            conn.setblocking(False)
            task = asyncio.ensure_future(
                self._loop.connect_accepted_socket(self._protocol, conn), loop=self._loop
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        finally:
            self._answered.set()

    def _protocol(self) -> asyncio.Protocol:
        """uvicorn's protocol, with a shutdown that lets a just-accepted connection be served.

        uvicorn's graceful shutdown closes at once every connection that has not begun a request
        (`cycle is None`): meant for idle keep-alive connections, but it also closes one this
        process accepted a moment ago whose request is still on its way, and the client sees
        the server hang up without an answer. Such a connection gets FIRST_REQUEST_S to begin
        its request first; uvicorn waits for every open connection before the process exits.
        """
        protocol = self._protocol_factory()
        shutdown = getattr(protocol, "shutdown", None)
        if shutdown is None or not hasattr(protocol, "cycle"):
            return protocol
        accepted_at = self._loop.time()

        def shutdown_after_first_request() -> None:
            waited = self._loop.time() - accepted_at
            if protocol.cycle is None and waited < FIRST_REQUEST_S:
                self._loop.call_later(FIRST_REQUEST_S - waited, shutdown)
            else:
                shutdown()

        protocol.shutdown = shutdown_after_first_request  # type: ignore[attr-defined]
        return protocol

    def close(self) -> None:
        self._closed = True
        self._answered.set()

    async def wait_closed(self) -> None:
        if self._tasks:  # connections accepted but not yet handed to their protocol
            await asyncio.wait(self._tasks)


def accept_in_turn(loop: asyncio.AbstractEventLoop) -> None:
    """From now on, `loop.create_server(factory, sock=...)` accepts in turn (uvicorn's call for
    the sockets gunicorn hands it); every other call is the loop's own."""
    if not SUPPORTED:
        return
    create_server = loop.create_server

    async def create_server_in_turn(protocol_factory, *args, sock=None, **kwargs):
        if sock is None or args or kwargs.get("ssl") is not None:
            return await create_server(protocol_factory, *args, sock=sock, **kwargs)
        try:
            return TurnAcceptServer(loop, protocol_factory, sock)
        except OSError:  # EPOLLEXCLUSIVE known to Python but refused by the kernel (< 4.5)
            return await create_server(protocol_factory, *args, sock=sock, **kwargs)

    loop.create_server = create_server_in_turn  # type: ignore[method-assign]
