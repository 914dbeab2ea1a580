"""SIGTERM to the arbiter: readiness flips first, in-flight requests finish, everything exits."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

pytestmark = pytest.mark.integration


def test_sigterm_flips_readiness_first_then_drains_in_flight(start_worker):
    worker = start_worker(processes=2, DRAIN_DELAY="1.5", GRACEFUL_TIMEOUT="10")
    assert worker.get("/readyz").status_code == 200

    slow: dict = {}

    def slow_request() -> None:
        response = worker.get("/work/io?ms=3000", timeout=20)
        slow.update(status=response.status_code, body=response.json(), done=time.monotonic())

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(0.5)  # the slow request is now in flight
    sigterm_at = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)

    first_not_ready = still_serving = refused = None
    deadline = sigterm_at + 10
    while time.monotonic() < deadline and refused is None:
        try:
            ready = worker.get("/readyz", timeout=2)
            if ready.status_code == 503 and first_not_ready is None:
                first_not_ready = time.monotonic()
                assert ready.json()["ready"] is False
                # Not ready, yet still serving: the Service stops routing before we stop answering.
                still_serving = worker.get("/", timeout=2).status_code
        except httpx.TransportError:
            refused = time.monotonic()
        time.sleep(0.05)

    thread.join(timeout=20)
    exit_code = worker.proc.wait(timeout=15)

    assert first_not_ready is not None, "readiness never reported 503 after SIGTERM"
    print(
        f"readyz 503 after {first_not_ready - sigterm_at:.2f}s; "
        f"socket closed after {(refused or float('nan')) - sigterm_at:.2f}s; "
        f"slow request done after {slow['done'] - sigterm_at:.2f}s"
    )
    assert first_not_ready - sigterm_at < 1.0
    assert still_serving == 200
    assert refused is None or first_not_ready < refused
    assert slow["status"] == 200 and slow["body"]["ms"] == 3000, "in-flight request was cut"
    assert first_not_ready < slow["done"]
    assert exit_code == 0, worker.logs()


def test_sigterm_without_drain_delay_exits_promptly(start_worker):
    worker = start_worker(processes=2, DRAIN_DELAY="0")
    started = time.monotonic()
    assert worker.stop(signal.SIGTERM, timeout=10) == 0
    assert time.monotonic() - started < 5


def test_sigint_stops_at_once_even_during_the_drain_delay(start_worker):
    worker = start_worker(processes=2, DRAIN_DELAY="30", GRACEFUL_TIMEOUT="30")
    worker.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    started = time.monotonic()
    assert worker.stop(signal.SIGINT, timeout=10) == 0
    assert time.monotonic() - started < 5, "processes lingered until GRACEFUL_TIMEOUT"


def test_processes_close_their_listening_socket_once(start_worker):
    # uvloop closes the listening fd itself; handing it gunicorn's socket wrapper made the wrapper
    # close that fd again and log `Error while closing socket [Errno 9] Bad file descriptor`.
    worker = start_worker(processes=2, DRAIN_DELAY="0")
    assert worker.get("/").status_code == 200
    assert worker.stop(signal.SIGTERM, timeout=10) == 0
    logs = worker.log_path.read_text()
    assert logs.count("Shutting down") >= 2, logs[-3000:]  # both processes went through shutdown
    assert "Error while closing socket" not in logs, logs[-3000:]
    assert "Bad file descriptor" not in logs, logs[-3000:]
