"""A measurement, not a timing assertion: while one process burns CPU, can `/` still answer?

With 1 process, `/` waits for the CPU work (one event loop, like one Node process). With 2,
another process answers at once. Latencies are printed (run with -s) for the docs.
"""

from __future__ import annotations

import threading
import time

import pytest

pytestmark = pytest.mark.integration

CPU_MS = 1500
HEAD_START_S = 0.3


def _measure(worker) -> dict:
    worker.get("/")  # warm up
    cpu: dict = {}

    def burn() -> None:
        response = worker.get(f"/work/cpu?ms={CPU_MS}", timeout=20)
        cpu.update(pid=response.json()["pid"], done=time.monotonic())

    thread = threading.Thread(target=burn)
    thread.start()
    time.sleep(HEAD_START_S)
    asked = time.monotonic()
    hello = worker.get("/", timeout=20)
    answered = time.monotonic()
    thread.join(timeout=20)
    return {
        "status": hello.status_code,
        "hello_pid": hello.json()["pid"],
        "cpu_pid": cpu["pid"],
        "latency_ms": round((answered - asked) * 1000, 1),
        "answered_before_cpu_done": answered < cpu["done"],
    }


def test_cpu_work_in_one_process_does_not_block_the_other(start_worker):
    results = {}
    for processes in (1, 2):
        worker = start_worker(processes=processes)
        results[processes] = _measure(worker)
        worker.stop()
    for processes, result in results.items():
        print(f"processes={processes}: GET / during /work/cpu?ms={CPU_MS}: {result}")
    two = results[2]
    assert two["status"] == 200
    assert two["answered_before_cpu_done"], two
    assert two["hello_pid"] != two["cpu_pid"]
