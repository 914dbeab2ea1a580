"""`workerlab status` rendering and the chaos drills' flow, on a scripted stand-in for kubectl
(the real thing runs in tests/e2e/cli/test_cli.py)."""

from __future__ import annotations

import io

from rich.console import Console

from workerlab.api import exits
from workerlab.cli import drills as chaos
from workerlab.cli.status_view import render
from workerlab.common.views import ClusterView, cluster_view, process_rows

WC = {
    "metadata": {"name": "demo", "namespace": "workerlab", "generation": 1},
    "spec": {"replicas": 1, "processesPerPod": 2, "labMode": True, "port": 8000},
    "status": {
        "readyReplicas": 1,
        "readyProcesses": 2,
        "phase": "Ready",
        "conditions": [{"type": "Ready", "status": "True", "reason": "AllPodsReady"}],
    },
}


def pod(name="demo-a", restarts=0, ready=True):
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "labels": {"workerlab.dev/template-hash": "abc"},
        },
        "spec": {"nodeName": "workerlab-control-plane"},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"restartCount": restarts, "state": {"running": {}}}],
        },
    }


class ScriptedKube:
    """Answers like kubectl would while an arbiter replaces a crashed process."""

    namespace = "workerlab"

    def __init__(self):
        self.alive = [7, 8]
        self.deleted = []

    def worker_cluster(self, name):
        return WC

    def pods_of(self, name):
        return [pod()]

    def proxy_get(self, pod_name, port, path, timeout=10):
        return {
            "arbiter_pid": 1,
            "processes": [
                {"pid": p, "index": i, "alive": True, "started_at": 0}
                for i, p in enumerate(self.alive)
            ],
        }

    def proxy_post(self, pod_name, port, path, timeout=10):
        assert path == "/crash"
        crashed = self.alive[0]
        self.alive = [self.alive[1], 9]  # the arbiter forks pid 9 into the slot
        return {"pid": crashed, "healed_by": "gunicorn arbiter"}


def test_kill_process_names_the_arbiter():
    (result,) = chaos.kill_processes(ScriptedKube(), "demo", count=1, timeout_s=5)
    assert result.healed_by == "arbiter"
    assert result.target == "demo-a/7" and "new pid 9" in result.detail


def test_process_rows_and_render():
    rows = process_rows(
        {
            "processes": [
                {
                    "pid": 7,
                    "index": 0,
                    "started_at": 100.0,
                    "requests_served": 5,
                    "alive": True,
                    "in_flight": 3,
                    "control_served": 41,
                },
                {"pid": 6, "index": 0, "started_at": 50.0, "requests_served": 2, "alive": False},
            ]
        },
        now=160.0,
    )
    assert rows[0].uptime_s == 60.0 and rows[1].uptime_s is None
    assert (rows[0].in_flight, rows[1].in_flight) == (3, None)
    assert (rows[0].control_served, rows[1].control_served) == (41, None)  # an older worker
    view = cluster_view(WC, [pod(restarts=2)])
    view.pods[0].processes = rows
    view.pods[0].arbiter_pid = 1
    view.pods[0].balance = "reuseport"
    buffer = io.StringIO()
    render([view], Console(file=buffer, width=160))
    text = buffer.getvalue()
    assert "wc/demo" in text and "1/1 pods ready" in text and "restarts=2" in text
    assert "hash=abc" in text and "arbiter pid=1" in text and "exited" in text
    assert "balance=reuseport" in text and "in flight" in text
    header = next(line for line in text.splitlines() if "requests" in line)
    assert header.split()[-2:] == ["control", "state"]  # the machinery's, in a column apart
    row = next(line for line in text.splitlines() if line.strip().startswith("7 "))
    assert row.split()[3:6] == ["5", "3", "41"]  # requests, in flight, control


def test_render_without_clusters_says_what_to_do():
    buffer = io.StringIO()
    render([], Console(file=buffer))
    assert "manifests/samples" in buffer.getvalue()
    assert isinstance(cluster_view(WC, []), ClusterView)


def test_process_table_tells_removed_from_timed_out_from_exited():
    dead = [
        {"pid": 11, "index": 0, "alive": False, "exit": exits.EXITED},
        {"pid": 12, "index": 1, "alive": False, "exit": exits.REMOVED},
        {"pid": 13, "index": 2, "alive": False, "exit": exits.TIMED_OUT},
    ]
    view = cluster_view(WC, [pod()])
    view.pods[0].processes = process_rows({"processes": dead}, now=160.0)
    buffer = io.StringIO()
    render([view], Console(file=buffer, width=160))
    states = {
        # pid slot uptime requests in-flight control state
        line.split()[0]: line.split(None, 6)[-1].strip()
        for line in buffer.getvalue().splitlines()
        if line.split() and line.split()[0] in {"11", "12", "13"}
    }
    assert states == {"11": "exited", "12": "removed (TTOU or reload)", "13": "timed out"}


def test_a_lost_node_is_said_under_its_workercluster():
    lost = {"lostNodes": [{"name": "w2", "lastHeartbeatTime": "2026-12-04T20:00:00Z"}]}
    wc = {**WC, "status": {**WC.get("status", {}), **lost}}
    view = cluster_view(wc, [pod()])
    assert view.lost_nodes == {"w2": "2026-12-04T20:00:00Z"}
    buffer = io.StringIO()
    render([view], Console(file=buffer, width=160))
    assert "node w2 lost: no heartbeat since 2026-12-04T20:00:00Z" in buffer.getvalue()
    assert cluster_view(WC, [pod()]).lost_nodes == {}


def test_the_process_count_is_the_one_read_now_with_the_status_figure_beside_when_it_differs():
    live = [{"pid": p, "index": i, "alive": True} for i, p in enumerate((7, 8, 9))]
    wc = {**WC, "status": {**WC.get("status", {}), "readyProcesses": 5}}
    view = cluster_view(wc, [pod()])
    view.pods[0].processes = process_rows({"processes": live}, now=160.0)
    buffer = io.StringIO()
    render([view], Console(file=buffer, width=200))
    head = " ".join(buffer.getvalue().split())
    assert "3 processes alive" in head and "read now in 1 pods" in head
    assert "the operator's status says 5" in head
    # not read (--no-processes): the status figure, said to be the status'
    unread = cluster_view(wc, [pod()])
    buffer = io.StringIO()
    render([unread], Console(file=buffer, width=200))
    assert "5 processes ready" in buffer.getvalue() and "the operator's status" in buffer.getvalue()


def test_status_says_a_change_in_place_as_such():
    from io import StringIO

    from rich.console import Console

    from workerlab.cli.status_view import render
    from workerlab.common.views import cluster_view

    wc = {
        "metadata": {"name": "demo", "namespace": "workerlab"},
        "spec": {"replicas": 2, "processesPerPod": 4},
        "status": {"pods": [{"name": "demo-a", "inPlace": "processes 2→4"}]},
    }
    pods = [
        {"metadata": {"name": name, "annotations": {
            "workerlab.dev/processes": "4",
            "workerlab.dev/changed-in-place-at": "2026-12-05T01:00:00Z"}},
         "status": {"phase": "Running"}}
        for name in ("demo-a", "demo-b")
    ]  # fmt: skip
    view = cluster_view(wc, pods)
    assert [p.in_place for p in view.pods] == ["processes 2→4", None]
    assert view.pods[1].processes_told == 4
    text = StringIO()
    render([view], Console(file=text, width=200))
    shown = text.getvalue()
    assert "changing in place: processes 2→4" in shown
    assert "changed in place at 2026-12-05T01:00:00Z: told 4 processes, no restart" in shown
