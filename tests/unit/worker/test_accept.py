"""worker/accept.py in one process: accepting in turn through uvloop, and its shutdown.

One process cannot show the turns (that needs several processes on one socket: the integration
tests test_balance.py and test_retire_add.py); this checks the plumbing: a connection is accepted
on the loop and served by the protocol, a just-accepted connection survives uvicorn's shutdown
long enough to send its request, and nothing is accepted after close().
"""

from __future__ import annotations

import asyncio
import socket
from typing import ClassVar

import pytest
import uvloop

from workerlab.worker import accept

pytestmark = pytest.mark.skipif(not accept.SUPPORTED, reason="no EPOLLEXCLUSIVE (Linux only)")


class Echo(asyncio.Protocol):
    """Answers the first chunk it reads; `cycle` stands in for uvicorn's (None: no request yet)."""

    shutdowns: ClassVar[list[str]] = []

    def __init__(self) -> None:
        self.cycle: object | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.cycle = object()
        assert self.transport is not None
        self.transport.write(b"echo:" + data)

    def shutdown(self) -> None:
        Echo.shutdowns.append("request" if self.cycle is not None else "none")
        assert self.transport is not None
        self.transport.close()


def listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def test_a_connection_is_accepted_in_turn_and_served():
    async def scenario() -> bytes:
        loop = asyncio.get_running_loop()
        accept.accept_in_turn(loop)
        sock = listener()
        server = await loop.create_server(Echo, sock=sock)
        assert isinstance(server, accept.TurnAcceptServer)
        reader, writer = await asyncio.open_connection(*sock.getsockname())
        writer.write(b"hi")
        answer = await asyncio.wait_for(reader.read(100), 5)
        writer.close()
        server.close()
        await server.wait_closed()
        sock.close()
        return answer

    assert uvloop.run(scenario()) == b"echo:hi"


def test_a_just_accepted_connection_gets_time_to_send_its_request_at_shutdown():
    Echo.shutdowns.clear()

    async def scenario() -> bytes:
        loop = asyncio.get_running_loop()
        accept.accept_in_turn(loop)
        sock = listener()
        server = await loop.create_server(Echo, sock=sock)
        protocols: list[Echo] = []
        original = server._protocol

        def remembering() -> asyncio.Protocol:
            protocol = original()
            protocols.append(protocol)  # type: ignore[arg-type]
            return protocol

        server._protocol = remembering  # type: ignore[method-assign]
        reader, writer = await asyncio.open_connection(*sock.getsockname())
        for _ in range(100):  # until the connection is accepted and handed to its protocol
            if protocols:
                break
            await asyncio.sleep(0.02)
        server.close()
        protocols[0].shutdown()  # uvicorn's shutdown, before the request arrived
        writer.write(b"late")  # the request arrives after: it is still answered
        answer = await asyncio.wait_for(reader.read(100), 5)
        await asyncio.sleep(accept.FIRST_REQUEST_S + 0.2)  # the deferred shutdown ran
        writer.close()
        sock.close()
        return answer

    assert uvloop.run(scenario()) == b"echo:late"
    assert Echo.shutdowns == ["request"]


def test_nothing_is_accepted_after_close():
    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        accept.accept_in_turn(loop)
        sock = listener()
        server = await loop.create_server(Echo, sock=sock)
        server.close()
        await asyncio.sleep(3 * accept.WAIT_S)  # the thread has seen `closed`
        client = socket.create_connection(sock.getsockname())  # queued by the kernel only
        await asyncio.sleep(3 * accept.RESCUE_S)
        sock.setblocking(False)
        try:
            conn, _ = sock.accept()  # still in the queue: nobody took it
        except BlockingIOError:
            return False
        conn.close()
        client.close()
        sock.close()
        return True

    assert uvloop.run(scenario())
