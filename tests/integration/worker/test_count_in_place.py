"""The process count changed in place: the arbiter follows WORKER_PROCESSES_FILE (in a pod, the
operator's annotation through the downward API), forking or retiring processes while it serves,
and keeps the count across a reload (HUP) and a process crash. Real arbiter, real sockets."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

CHANGE_DEADLINE_S = 15.0
LOAD_CLIENTS = 4
LOAD_MAX_REQUESTS = 6000  # per client; the load is also bounded in time
LOAD_MAX_S = 90.0


def write_count(path: Path, count: object) -> None:
    """As the kubelet updates a downward API file: a new file renamed over the old one."""
    fresh = path.with_suffix(".new")
    fresh.write_text(f"{count}")
    fresh.replace(path)


class FreshConnectionLoad:
    """GET / from LOAD_CLIENTS threads, one new connection per request, until stopped."""

    def __init__(self, url: str) -> None:
        self.url, self.stop_flag = url, threading.Event()
        self.ok, self.failed = 0, []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, daemon=True) for _ in range(LOAD_CLIENTS)
        ]

    def _run(self) -> None:
        deadline = time.monotonic() + LOAD_MAX_S
        for _ in range(LOAD_MAX_REQUESTS):
            if self.stop_flag.is_set() or time.monotonic() > deadline:
                return
            try:
                response = httpx.get(self.url, headers={"Connection": "close"}, timeout=10)
                good = response.status_code == 200
                detail = f"HTTP {response.status_code}"
            except httpx.HTTPError as error:
                good, detail = False, repr(error)
            with self._lock:
                if good:
                    self.ok += 1
                else:
                    self.failed.append(detail)

    def __enter__(self) -> FreshConnectionLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_flag.set()
        for thread in self._threads:
            thread.join(timeout=20)


def test_the_count_follows_the_file_up_and_down_under_load_without_a_failed_request(
    start_worker, tmp_path
):
    count_file = tmp_path / "processes"
    write_count(count_file, 2)
    worker = start_worker(processes=2, WORKER_PROCESSES_FILE=count_file)
    first = worker.alive_pids()
    with FreshConnectionLoad(worker.base_url + "/") as load:
        time.sleep(1)
        write_count(count_file, 4)
        grown, up_s = worker.wait_for_alive(
            lambda pids: len(pids) == 4, CHANGE_DEADLINE_S, "forking up to 4"
        )
        assert first <= grown, "a process was replaced instead of two added"
        time.sleep(1)
        write_count(count_file, 1)
        shrunk, down_s = worker.wait_for_alive(
            lambda pids: len(pids) == 1, CHANGE_DEADLINE_S, "retiring down to 1"
        )
        time.sleep(1)
    print(f"2->4 in {up_s:.1f}s, 4->1 in {down_s:.1f}s; {load.ok} ok, {len(load.failed)} failed")
    assert worker.proc.poll() is None and load.ok > 100
    assert not load.failed, load.failed[:5]
    # The oldest go first (gunicorn's TTOU order): the survivor is the newest of the four.
    assert shrunk <= grown - first
    records = worker.get("/processes").json()["processes"]
    retired = [r for r in records if not r["alive"] and r["pid"] in grown]
    assert len(retired) == 3 and all("removed" in (r.get("exit") or "") for r in retired), retired


def test_the_count_survives_a_reload_and_a_crash_and_a_bad_file_keeps_it(start_worker, tmp_path):
    count_file = tmp_path / "processes"
    write_count(count_file, 3)
    worker = start_worker(processes=3, WORKER_PROCESSES=1, WORKER_PROCESSES_FILE=count_file)
    before = worker.alive_pids()
    os.kill(worker.arbiter_pid, signal.SIGHUP)  # gunicorn's reload: new processes, same arbiter
    worker.wait_for_alive(
        lambda pids: len(pids) == 3 and not pids & before, CHANGE_DEADLINE_S, "reloading 3"
    )
    victim = worker.post("/crash").json()["pid"]
    worker.wait_for_alive(
        lambda pids: len(pids) == 3 and victim not in pids, CHANGE_DEADLINE_S, "re-forking"
    )
    write_count(count_file, "lots")
    time.sleep(2.5)  # two turns of the arbiter's loop
    assert len(worker.alive_pids()) == 3
    assert "WORKER_PROCESSES_FILE" in worker.logs() and "keeping 3 processes" in worker.logs()


def test_a_retired_process_with_a_long_request_stops_within_the_graceful_timeout(
    start_worker, tmp_path
):
    count_file = tmp_path / "processes"
    write_count(count_file, 2)
    worker = start_worker(processes=2, WORKER_PROCESSES_FILE=count_file, GRACEFUL_TIMEOUT=3)
    results: list[str] = []

    def long_request() -> None:
        try:
            results.append(str(worker.get("/work/io?ms=25000", timeout=40).status_code))
        except httpx.HTTPError as error:
            results.append(type(error).__name__)

    # Enough slow requests that both processes hold some (an idle process takes the next one).
    threads = [threading.Thread(target=long_request, daemon=True) for _ in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    started = time.monotonic()
    write_count(count_file, 1)
    worker.wait_for_alive(lambda pids: len(pids) == 1, 20, "retiring one")
    gone_s = time.monotonic() - started
    for thread in threads:
        thread.join(timeout=40)
    print(f"retired after {gone_s:.1f}s; requests: {results}")
    # Bounded by GRACEFUL_TIMEOUT (3 s) plus the arbiter's 1 s loop, not the request's 25 s.
    assert gone_s < 3 + 4, f"the retired process lingered {gone_s:.1f}s"
    assert worker.proc.poll() is None
