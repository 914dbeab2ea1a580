"""A process retired (SIGTTOU to the arbiter) or added (SIGTTIN) under load loses no request.

Issue 26 changes the process count in place. Whatever BALANCE does, a process that leaves must
not take connections with it: with `reuseport` each process owns a listening socket, and closing
it resets the connections the kernel already queued on it (unless net.ipv4.tcp_migrate_req=1,
which a restricted pod cannot set). With `shared` the queue belongs to the one socket every
process holds, so the others keep accepting from it.

Load: a bounded number of GET / on fresh connections from 127.0.0.1, from a few concurrent
loops, for the whole sequence 3 -> 2 -> 1 -> 2 -> 3 processes; every failure is counted.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest

from workerlab.worker.config import DEFAULT_BALANCE

pytestmark = pytest.mark.integration

CLIENTS = 8
MAX_REQUESTS = 20_000  # an upper bound, never reached in practice: the load stops on `done`
LOAD_DEADLINE_S = 60.0  # the load ends by itself whatever happens to the test
SETTLE_S = 1.0  # load on each process count before the next signal
MIN_PER_STEP = 20  # requests answered between two signals: the load really ran meanwhile


@dataclass
class Load:
    """GET / on a fresh connection per request, from CLIENTS loops, in a thread of its own."""

    base_url: str
    done: threading.Event = field(default_factory=threading.Event)
    served: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    answered: int = 0

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        issued = 0
        deadline = time.monotonic() + LOAD_DEADLINE_S
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=0)
        headers = {"Connection": "close"}
        async with httpx.AsyncClient(timeout=10, limits=limits, headers=headers) as client:

            async def loop() -> None:
                nonlocal issued
                while not self.done.is_set() and issued < MAX_REQUESTS:
                    if time.monotonic() > deadline:
                        self.failures.append("load deadline reached")
                        return
                    issued += 1
                    try:
                        response = await client.get(f"{self.base_url}/")
                    except httpx.HTTPError as error:
                        self.failures.append(f"{type(error).__name__}: {error}")
                        continue
                    if response.status_code != 200:
                        self.failures.append(f"HTTP {response.status_code}")
                        continue
                    self.served[response.json()["pid"]] += 1
                    self.answered += 1

            await asyncio.gather(*(loop() for _ in range(CLIENTS)))


def _settle(load: Load) -> None:
    """Let the load run on the current processes: SETTLE_S and at least MIN_PER_STEP answers."""
    start = load.answered
    deadline = time.monotonic() + 15
    time.sleep(SETTLE_S)
    while load.answered - start < MIN_PER_STEP and time.monotonic() < deadline:
        time.sleep(0.1)
    assert load.answered - start >= MIN_PER_STEP, "the load stalled"


@pytest.mark.parametrize("balance", sorted({DEFAULT_BALANCE, "shared"}))
def test_retiring_and_adding_processes_under_load_loses_no_request(start_worker, balance):
    worker = start_worker(processes=3, lab_mode=False, BALANCE=balance)
    assert worker.get("/processes").json()["balance"] == balance
    load = Load(worker.base_url)
    thread = threading.Thread(target=load.run, daemon=True)
    thread.start()
    steps = []
    try:
        _settle(load)
        for sig, count in (
            (signal.SIGTTOU, 2),
            (signal.SIGTTOU, 1),
            (signal.SIGTTIN, 2),
            (signal.SIGTTIN, 3),
        ):
            worker.proc.send_signal(sig)
            pids, _ = worker.wait_for_alive(
                lambda pids, count=count: len(pids) == count, 20, f"{sig.name} -> {count}"
            )
            _settle(load)
            steps.append((sig.name, len(pids)))
    finally:
        load.done.set()
        thread.join(LOAD_DEADLINE_S + 15)
    assert not thread.is_alive()
    print(f"BALANCE={balance}: {load.answered} answered, steps {steps}, by pid {load.served}")
    assert load.failures == [], f"{len(load.failures)} failed: {Counter(load.failures)}"
    assert load.answered >= 5 * MIN_PER_STEP
