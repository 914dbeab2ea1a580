"""How the arbiter describes a process it reaped: removed on purpose, timed out, or exited."""

from types import SimpleNamespace

import pytest

from workerlab.api import exits
from workerlab.worker import arbiter


@pytest.mark.parametrize(
    ("timed_out", "surplus", "expected"),
    [
        (False, False, exits.EXITED),  # crashed: the arbiter will fork a replacement
        (False, True, exits.REMOVED),  # TTOU: the arbiter wanted one fewer
        (True, False, exits.TIMED_OUT),  # the watchdog aborted it
        (True, True, exits.TIMED_OUT),
    ],
)
def test_how_it_ended(timed_out, surplus, expected):
    assert exits.how_it_ended(timed_out=timed_out, surplus=surplus) == expected


def test_every_description_has_its_own_short_label():
    labels = [exits.short_label(d) for d in (exits.EXITED, exits.REMOVED, exits.TIMED_OUT)]
    assert len(set(labels)) == 3
    assert exits.short_label(None) == "exited"
    assert exits.short_label("something new") == "something new"


class RecordingState:
    def __init__(self):
        self.dead = {}

    def mark_dead(self, pid, description):
        self.dead[pid] = description


@pytest.mark.parametrize(
    ("left_behind", "wanted", "aborted", "retired", "expected"),
    [
        (1, 2, False, False, exits.EXITED),  # one of two died: a replacement is due
        (2, 2, False, False, exits.REMOVED),  # TTOU took 3 -> 2: the arbiter has all it wants
        (1, 2, True, False, exits.TIMED_OUT),
        # 1 -> 2 while the retired one of 2 -> 1 still drained: its exit is on purpose
        (1, 2, False, True, exits.REMOVED),
    ],
)
def test_the_child_exit_hook_records_why(
    monkeypatch, left_behind, wanted, aborted, retired, expected
):
    import prometheus_client.multiprocess

    monkeypatch.setattr(prometheus_client.multiprocess, "mark_process_dead", lambda *a: None)
    app = SimpleNamespace(state=RecordingState())
    # gunicorn has already popped the reaped process from WORKERS when it calls child_exit
    retiring = {42: 0.0} if retired else {}
    server = SimpleNamespace(
        WORKERS=dict.fromkeys(range(left_behind)), num_workers=wanted, retiring=retiring
    )
    worker = SimpleNamespace(pid=42, aborted=aborted)
    app.state.metrics = "/nonexistent"
    arbiter.WorkerApplication._child_exit(app, server, worker)
    assert app.state.dead == {42: expected}
