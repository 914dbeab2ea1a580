"""The per-pod state dir: process records, death marks, pruning, the draining flag."""

from __future__ import annotations

import os
import subprocess
import sys

from workerlab.worker.siblings import KEEP_DEAD_RECORDS, ProcessIdentity, StateDir


def dead_pid() -> int:
    code = "import os; print(os.getpid())"
    proc = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(proc.stdout)


def test_prepare_clears_a_previous_run(tmp_path):
    state = StateDir(tmp_path)
    state.prepare()
    (state.processes / "1.json").write_text("{}")
    (state.metrics / "counter_1.db").write_text("")
    state.mark_draining()
    state.prepare()
    assert list(state.processes.iterdir()) == [] and list(state.metrics.iterdir()) == []
    assert not state.is_draining()


def test_records_round_trip_and_liveness(tmp_path):
    state = StateDir(tmp_path)
    state.prepare()
    me = ProcessIdentity(index=1, generation=3)
    state.write_record(me, requests_served=7, in_flight=2)
    gone = ProcessIdentity(index=0, generation=1, pid=dead_pid())
    state.write_record(gone, requests_served=2)  # claims alive, but its pid no longer exists
    records = state.read_records()
    assert [r.pid for r in records] == [os.getpid(), gone.pid]  # live first
    assert records[0].requests_served == 7 and records[0].index == 1
    assert records[0].alive is True and records[1].alive is False
    assert records[0].in_flight == 2


def test_mark_dead_and_prune(tmp_path):
    state = StateDir(tmp_path)
    state.prepare()
    pids = []
    for generation in range(KEEP_DEAD_RECORDS + 3):
        pid = 10_000_000 + generation  # above pid_max: never a live process
        pids.append(pid)
        state.write_record(ProcessIdentity(index=0, generation=generation, pid=pid), 1)
        state.mark_dead(pid, "exited")
    records = state.read_records()
    assert len(records) == KEEP_DEAD_RECORDS
    assert records[0].pid == pids[-1]  # most recent death first
    assert all(r.alive is False and r.exit == "exited" for r in records)
    assert all(r.in_flight == 0 for r in records)  # the dead serve nothing


def test_garbage_files_are_ignored(tmp_path):
    state = StateDir(tmp_path)
    state.prepare()
    (state.processes / "bad.json").write_text("not json")
    (state.processes / "list.json").write_text("[1, 2]")
    assert state.read_records() == []
