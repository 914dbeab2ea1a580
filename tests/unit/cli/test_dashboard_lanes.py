"""The time axis (lanes.py) and its recorded file (record.py): a rollout, a heal and a re-fork
each leave the shape the page draws; gone lanes are kept for the span, then dropped."""

from __future__ import annotations

import json
import re

from workerlab.api.processes import ProcessRecord
from workerlab.cli.dashboard.lanes import SPAN_S, LaneBook
from workerlab.cli.dashboard.model import Model
from workerlab.cli.dashboard.record import record_html


def pod(name, ready=True, terminating=False, created="1970-01-01T00:16:40Z", node="n1"):
    meta = {"name": name, "uid": f"uid-{name}", "creationTimestamp": created,
            "labels": {"app.kubernetes.io/instance": "demo"}}  # fmt: skip
    if terminating:
        meta["deletionTimestamp"] = "1970-01-01T00:20:00Z"
    status = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    return {"metadata": meta, "spec": {"nodeName": node}, "status": status}


def states(book, name):
    (lane,) = [lane for lane in book.lanes.values() if lane.name == name]
    return [s for _, s in lane.states], lane


def test_a_rollout_shows_the_new_pod_ready_while_the_old_one_still_serves():
    book = LaneBook()
    book.pod("uid-old", pod("old"), "demo", 1000)
    book.pod("uid-new", pod("new", ready=False, created="1970-01-01T00:16:50Z"), "demo", 1010)
    book.pod("uid-new", pod("new", created="1970-01-01T00:16:50Z"), "demo", 1014)
    book.pod("uid-old", pod("old", terminating=True), "demo", 1015)
    book.gone("uid-old", 1020)
    old_states, old = states(book, "old")
    new_states, new = states(book, "new")
    assert old_states == ["ready", "terminating"] and old.gone == 1020
    assert new_states == ["starting", "ready"]
    assert new.states[1][0] == 1014 < old.states[1][0] == 1015  # Ready before the old one left
    assert old.states[0][0] == 1000  # drawn from its creationTimestamp


def test_a_re_fork_ends_one_span_and_starts_the_next_in_the_same_slot_with_a_rate():
    book = LaneBook()
    book.pod("u", pod("p"), "demo", 1000)
    book.processes("u", [ProcessRecord(10, 0, 1, 990.0, 0, alive=True)], 1001)
    book.processes("u", [ProcessRecord(10, 0, 1, 990.0, 20, alive=True)], 1003)
    book.processes("u", [ProcessRecord(10, 0, 1, 990.0, 20, alive=False, exited_at=1004.0,
                                       exit="killed by signal 9"),
                         ProcessRecord(12, 0, 2, 1004.2, 0, alive=True)], 1005)  # fmt: skip
    (lane,) = book.lanes.values()
    dead, born = lane.processes[10], lane.processes[12]
    assert (dead.exited, dead.exit) == (1004.0, "killed by signal 9")
    assert born.index == dead.index == 0 and born.started == 1004.2
    assert list(dead.rate) == [(1003, 10.0)]  # 20 requests in 2 s


def test_a_container_restart_closes_its_processes_and_gone_lanes_age_out():
    book = LaneBook()
    book.pod("u", pod("p"), "demo", 1000)
    book.processes("u", [ProcessRecord(10, 0, 1, 990.0, 0, alive=True)], 1001)
    book.restarted("u", 1010)
    (lane,) = book.lanes.values()
    assert lane.restarts == [1010] and lane.processes[10].exit == "container restarted"
    book.gone("u", 1020)
    assert book.view(1020 + SPAN_S - 1)["pods"]
    assert book.view(1020 + SPAN_S + 1)["pods"] == []


def test_the_model_feeds_the_lanes_and_the_record_is_self_contained():
    m = Model("lab")
    m.wc("ADDED", {"metadata": {"name": "demo"}, "spec": {"replicas": 1}}, 1000)
    m.pod("ADDED", pod("demo-a"), 1000)
    m.pod("DELETED", pod("demo-a"), 1010)
    m.set_health("cluster", True, 1000)
    m.set_health("cluster", False, 1011, "connection refused")
    m.set_health("cluster", True, 1020)
    view = m.view(1030)
    (lane,) = view["lanes"]["pods"]
    assert lane["name"] == "demo-a" and lane["gone"] == 1010
    assert [e["reason"] for e in view["timeline"]][:2] == ["APIServerBack", "APIServerLost"]
    page = record_html(view, "kind-workerlab")
    assert "<script src" not in page and "<link" not in page
    assert not re.search(r"(src|href|url)\s*[=(]\s*[\"']?https?:", page)  # nothing to fetch
    assert "drawAllLanes(" in page and "function drawLanes" in page
    data = json.loads(re.search(r"const RECORD = (.*);\n", page).group(1))
    assert data["lanes"]["pods"][0]["name"] == "demo-a"
    assert "the API server is unreachable: connection refused" in page


def test_the_axis_starts_near_when_the_page_began_within_a_minute_and_five():
    book = LaneBook()
    book.pod("u", pod("p"), "demo", 1000)
    assert book.view(1010)["from"] == 1010 - 60  # a minute at least
    assert book.view(1200)["from"] == 990  # ten seconds before the page began
    assert book.view(2000)["from"] == 2000 - SPAN_S  # five minutes at most


def test_a_record_path_that_could_only_fail_at_the_end_is_refused_at_the_start(tmp_path):
    import pytest

    from workerlab.cli.commands.dashboard import _check_record_path
    from workerlab.common.errors import WorkerlabError

    _check_record_path(tmp_path / "session.html")  # a new file in a folder of ours: fine
    with pytest.raises(WorkerlabError, match="does not exist"):
        _check_record_path(tmp_path / "missing" / "session.html")
    with pytest.raises(WorkerlabError, match="is a folder"):
        _check_record_path(tmp_path)
