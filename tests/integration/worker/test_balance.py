"""How connections reach the processes (BALANCE), on a real arbiter with real sockets.

Counts only, no timing asserts: which process answered each request, and the kernel's own list of
listening sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from workerlab.common.loadstats import jain
from workerlab.worker.config import DEFAULT_BALANCE

pytestmark = pytest.mark.integration

BURST_REQUESTS = 600
BURST_CLIENTS = 16
BUSY_LOOP_MAX_S = 120  # the busy loop ends by itself even if the test is killed
# The default (`shared`, each connection offered to one idle process in turn: worker/accept.py)
# gave every process of 3 at least 0.287 of the requests in every run measured with one core
# busy on this 2-CPU machine (bench/results/spread.md; the goal of issue 26 is >= 0.27, checked
# there three runs in a row). The test asks for a bit less, 3/4 of the fair share, to stay green
# next to CI's other lanes; uvloop's own accept, the default before, gave 0.11-0.16 to the
# process on the busier core in 4 runs of 5 here, so this still fails on what matters.
MIN_SHARE = 0.25  # of the requests, for every process
MIN_JAIN = 0.95
RECORDS_SETTLE_S = 10.0  # /processes lags: each process publishes its counts within 0.5 s


def listening_sockets(port: int) -> int:
    """LISTEN entries for the port in the kernel's TCP table (this network namespace)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
                    count += 1
    return count


@contextlib.contextmanager
def one_core_busy():
    """Another process spinning on one CPU for the duration (bounded in time by itself)."""
    cpu = max(os.sched_getaffinity(0))
    code = (
        f"import os, time; os.sched_setaffinity(0, {{{cpu}}})\n"
        f"end = time.monotonic() + {BUSY_LOOP_MAX_S}\n"
        "while time.monotonic() < end: pass"
    )
    spinner = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.3)
        yield
    finally:
        spinner.kill()
        spinner.wait(5)


async def burst(base_url: str, requests: int, clients: int) -> Counter[int]:
    """`requests` GET / from `clients` concurrent loops, each request on a fresh connection."""
    served: Counter[int] = Counter()
    issued = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=0)
    headers = {"Connection": "close"}
    async with httpx.AsyncClient(timeout=10, limits=limits, headers=headers) as client:

        async def loop() -> None:
            nonlocal issued
            while issued < requests:
                issued += 1
                response = await client.get(f"{base_url}/")
                served[response.json()["pid"]] += 1

        await asyncio.gather(*(loop() for _ in range(clients)))
    return served


def test_default_mode_gives_every_process_a_fair_share_while_a_core_is_busy(start_worker):
    worker = start_worker(processes=3, lab_mode=False)
    pids = worker.alive_pids()
    assert worker.get("/processes").json()["balance"] == DEFAULT_BALANCE
    with one_core_busy():
        served = asyncio.run(burst(worker.base_url, BURST_REQUESTS, BURST_CLIENTS))
    counts = {str(pid): served.get(pid, 0) for pid in pids}
    print(f"BALANCE={DEFAULT_BALANCE}, 3 processes, one core busy: {counts}")
    assert sum(served.values()) == BURST_REQUESTS
    assert set(served) <= pids  # no process was replaced meanwhile
    assert all(n >= MIN_SHARE * BURST_REQUESTS for n in counts.values()), counts
    assert jain(counts) >= MIN_JAIN, counts

    # /processes agrees exactly with what the clients saw. Its own polls are control traffic,
    # counted apart, so the burst is all there is; but each process publishes its record within
    # 0.5 s, so one read right after the burst may still show a request in flight (seen once:
    # in_flight [0, 1, 1]). Poll until the records settle, bounded; the asserts then read the
    # last records, so a count that never settles still fails.
    def published() -> dict[int, dict]:
        report = worker.get("/processes").json()
        return {p["pid"]: p for p in report["processes"] if p["alive"]}

    def observed(records: dict[int, dict]) -> tuple[dict, dict]:
        served_by = {pid: records.get(pid, {}).get("requests_served") for pid in pids}
        in_flight = {pid: r["in_flight"] for pid, r in records.items()}
        return served_by, in_flight

    expected = ({pid: served[pid] for pid in pids}, dict.fromkeys(pids, 0))
    deadline = time.monotonic() + RECORDS_SETTLE_S
    while (last := observed(published())) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert last[0] == expected[0], f"requests_served: published {last[0]}, seen {expected[0]}"
    assert last[1] == expected[1], f"in_flight after {RECORDS_SETTLE_S}s: {last[1]}"


@pytest.mark.parametrize(("balance", "sockets"), [("shared", 1), ("reuseport", 3)])
def test_balance_mode_decides_how_many_sockets_listen(start_worker, balance, sockets):
    worker = start_worker(processes=3, lab_mode=False, BALANCE=balance)
    assert worker.get("/processes").json()["balance"] == balance
    assert listening_sockets(worker.port) == sockets
    # Either way, every process serves.
    served = asyncio.run(burst(worker.base_url, 300, 8))
    assert set(served) == worker.alive_pids()


def test_a_replacement_process_gets_its_own_socket_in_reuseport_mode(start_worker):
    worker = start_worker(processes=2, lab_mode=True, BALANCE="reuseport")
    before = worker.alive_pids()
    victim = worker.post("/crash").json()["pid"]
    after, _ = worker.wait_for_alive(
        lambda pids: len(pids) == 2 and victim not in pids, 10, "replacing the crashed process"
    )
    (replacement,) = after - before
    # The dead process's socket closed with it; the replacement bound a new one and serves.
    deadline = time.monotonic() + 5
    while listening_sockets(worker.port) != 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert listening_sockets(worker.port) == 2
    served = asyncio.run(burst(worker.base_url, 200, 8))
    assert replacement in served
