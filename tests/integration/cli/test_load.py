"""`workerlab load` and `workerlab lab check` against a real local worker (gunicorn + FastAPI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

WORKERLAB = str(Path(sys.executable).with_name("workerlab"))


@pytest.fixture
def lab_home(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKERLAB_LAB_HOME", str(tmp_path / "lab-home"))
    return tmp_path / "lab-home"


def workerlab(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [WORKERLAB, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=os.environ.copy(),
        cwd="/tmp",
    )


def load_json(*args: str) -> tuple[int, dict]:
    done = workerlab("load", *args, "--json")
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_load_reports_the_distribution_over_processes(start_worker, lab_home):
    worker = start_worker(processes=2)
    rc, run = load_json(
        f"{worker.base_url}/work/cpu?ms=20",
        *("--requests", "60", "--concurrency", "4", "--no-keepalive"),
    )
    summary = run["summary"]
    assert rc == 0, run
    assert (summary["requests"], summary["ok"], summary["errors"]) == (60, 60, 0)
    assert set(summary["by_pod"]) == {"test-pod"}
    # A fresh connection per request, and CPU work keeps the accepting process busy: the other
    # process takes connections too. (With keep-alive, 4 connections accepted in one burst by
    # one process on a loaded machine would all stay there.)
    assert summary["processes_seen"] == 2, summary["by_process"]
    assert sum(summary["by_process"].values()) == 60
    lat = summary["latency_ms"]
    assert 15 <= lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    assert run["target_processes"] == 2
    assert set(summary["expected_processes"]) == set(summary["by_process"])
    assert summary["fairness"]["jain_processes"] is not None
    recorded = (lab_home / "load-runs.jsonl").read_text().splitlines()
    assert json.loads(recorded[-1])["summary"] == summary
    # "Who answered" agrees exactly with the worker's own counts: the /processes that load asked
    # before the run, and the polls below, are control traffic, counted apart.
    answered = {int(key.rsplit("/", 1)[1]): n for key, n in summary["by_process"].items()}
    deadline = time.monotonic() + 5  # each process republishes its record within 0.5 s
    while (served := requests_served(worker)) != answered and time.monotonic() < deadline:
        time.sleep(0.2)
    assert served == answered


def requests_served(worker) -> dict[int, int]:
    report = worker.get("/processes").json()
    return {p["pid"]: p["requests_served"] for p in report["processes"] if p["alive"]}


def test_one_kept_alive_connection_is_not_an_even_spread(start_worker, lab_home):
    worker = start_worker(processes=2)
    # One keep-alive connection: every request goes to the process that accepted it.
    rc, run = load_json(f"{worker.base_url}/", "--requests", "20", "--concurrency", "1")
    summary = run["summary"]
    assert rc == 0 and summary["processes_seen"] == 1, summary["by_process"]
    assert len(summary["expected_processes"]) == 2  # /processes, asked before the run
    fairness = summary["fairness"]
    assert (fairness["spread_processes"], fairness["jain_processes"]) == (0.0, 0.5)
    text = workerlab("load", f"{worker.base_url}/", "--requests", "20", "--concurrency", "1")
    assert "across processes 0.0 over 2 live processes" in text.stdout, text.stdout


def test_load_is_bounded_in_time(start_worker, lab_home):
    worker = start_worker(processes=1)
    started = time.monotonic()
    rc, run = load_json(
        f"{worker.base_url}/work/io?ms=300",
        "--requests",
        "100000",
        "--concurrency",
        "2",
        "--duration",
        "1.5",
        "--timeout",
        "5",
    )
    elapsed = time.monotonic() - started
    assert rc == 0
    assert run["summary"]["stopped_by"] == "duration"
    # It ran for the duration, then stopped: at most 2 clients x 1.5 s / 300 ms requests (plus
    # the 2 in flight). How many fit depends on the machine's load, so no lower count.
    assert run["summary"]["elapsed_s"] >= 1.5
    assert 1 <= run["summary"]["requests"] <= 12
    assert elapsed < 1.5 + 5 + 10  # duration + one request timeout + process start-up


def test_errors_are_counted_and_exit_1(start_worker, lab_home):
    worker = start_worker(processes=1)
    rc, run = load_json(
        f"{worker.base_url}/work/cpu?ms=999999", "--requests", "5", "--concurrency", "1"
    )
    assert rc == 1
    assert run["summary"]["errors_by_kind"] == {"http 422": 5}


def test_crashed_process_shows_up_as_a_new_pid(start_worker, lab_home):
    worker = start_worker(processes=2)
    before = worker.alive_pids()
    crashed = worker.post("/crash").json()["pid"]
    worker.wait_for_alive(lambda p: crashed not in p and len(p) == 2, 15, "re-forking")
    rc, run = load_json(
        f"{worker.base_url}/work/cpu?ms=20",
        "--requests",
        "40",
        "--concurrency",
        "4",
        "--no-keepalive",
    )
    pids = {int(k.rsplit("/", 1)[1]) for k in run["summary"]["by_process"]}
    assert rc == 0 and crashed not in pids and pids - before


def test_probe_shows_one_process_blocking_everyone(start_worker, lab_home):
    """Lab 1's claims, measured: the check passes on the learner's runs (part 1: two probe
    runs; part 2: one spread run per BALANCE mode, the mode as the worker's /processes said)."""
    one, two = start_worker(processes=1), start_worker(processes=2)
    # The probe's latency is the machine's as much as the worker's: on 2 cores shared with the
    # other test lanes, a free process can wait for a core too. Measure again (at most 3 times,
    # as a learner would) until the pair shows it; a worker that never does still fails below.
    for _attempt in range(3):
        for worker in (one, two):
            rc, _ = load_json(
                f"{worker.base_url}/work/cpu?ms=200",
                "--requests",
                "10",
                "--concurrency",
                "1",
                "--probe",
                "/",
            )
            assert rc == 0
        part1 = workerlab("lab", "check", "1")
        if "PASS with 2 processes, a free process answers at once" in part1.stdout:
            break
        print(f"lab 1, part 1 measured again after: {part1.stdout}")
    assert part1.returncode == 1 and "/6 checks, not yet" in part1.stdout, part1.stdout  # no part 2
    for mode in ("shared", "reuseport"):
        worker = start_worker(processes=3, BALANCE=mode)
        rc, run = load_json(
            f"{worker.base_url}/", "--requests", "240", "--concurrency", "16", "--no-keepalive"
        )
        assert rc == 0 and run["target_balance"] == mode, run.get("target_balance")
        worker.stop()
    done = workerlab("lab", "check", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6/6 checks, passed" in done.stdout
    assert "BALANCE=reuseport" in done.stdout and "over 3 processes" in done.stdout
