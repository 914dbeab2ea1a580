"""A standby master (issue 23, item 4): two operator processes with `--leader-elect` against a
real control plane (etcd, kube-apiserver, kube-controller-manager; no kubelet, so a "heal" is the
replacement pod object), with the RBAC the chart gives them (`operator.leaderElection=true`).

- Exactly one holds the Lease and acts; the other stands by (its liveness answers, it writes
  nothing).
- The active one SIGKILLed: the standby holds the Lease and replaces a deleted pod within the
  lease duration (10 s) plus 5 s.
- The active one stopped gracefully (SIGTERM): it releases the Lease; the standby acts within 2 s.
- The active one frozen (SIGSTOP) past the Lease, a pod deleted meanwhile, then resumed: the
  standby replaced the pod once; the old one exits on waking without writing (fencing), and no
  pod is ever created twice.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
from support.operator_process import OperatorProcess
from support.paths import REPO
from support.tools import tool

from workerlab.api.resource import OPERATOR_LEASE, OPERATOR_NAMESPACE
from workerlab.operator.leadership import EXIT_LOST, LEASE_DURATION_S

pytestmark = pytest.mark.integration

NS = "standby"
LEASE_NS = OPERATOR_NAMESPACE
ELECT = ("--leader-elect", f"--leader-election-namespace={LEASE_NS}", "--log-format=plain")
REPLICAS = 3


@pytest.fixture(scope="module")
def plane(control_plane):
    control_plane.ok("apply", "-k", str(REPO / "manifests"))
    rbac = subprocess.run(
        [
            tool("helm"), "template", "workerlab", str(REPO / "charts" / "workerlab"),
            "--namespace", LEASE_NS, "--set", "operator.leaderElection=true",
            "--show-only", "templates/rbac.yaml",
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    lease_rbac = [
        doc for doc in rbac.split("\n---\n") if "name: workerlab-operator-leader-election" in doc
    ]
    assert len(lease_rbac) == 2, rbac
    control_plane.ok("apply", "-f", "-", stdin="\n---\n".join(lease_rbac))
    control_plane.ok("create", "namespace", NS)
    return control_plane


@pytest.fixture
def pair(plane, tmp_path) -> Iterator[tuple[OperatorProcess, OperatorProcess]]:
    """Two instances: the first leads (it started first), the second stands by."""
    first = OperatorProcess(plane, tmp_path / "first", *ELECT)
    second = OperatorProcess(plane, tmp_path / "second", *ELECT)
    first.dir.mkdir(), second.dir.mkdir()
    first.start()
    second.start(until="liveness")
    yield first, second
    for op in (first, second):
        if op.proc and op.proc.poll() is None:
            op.proc.send_signal(signal.SIGCONT)
        op.stop()
    plane.kubectl("delete", "lease", OPERATOR_LEASE, "-n", LEASE_NS, "--ignore-not-found")


def holder(plane) -> str:
    return plane.json("get", "lease", OPERATOR_LEASE, "-n", LEASE_NS)["spec"].get(
        "holderIdentity", ""
    )


def pods(plane, name: str) -> list[dict]:
    items = plane.json("get", "pods", "-n", NS, "-l", f"app.kubernetes.io/instance={name}")
    return [p for p in items["items"] if not p["metadata"].get("deletionTimestamp")]


def created_names(plane, name: str) -> list[str]:
    """Every pod the operators ever created for `name`, from their Events (CreatedPod, or
    ReplacedPod when it replaced one that was deleted)."""
    events = plane.json("get", "events", "-n", NS)["items"]
    return [
        e["message"]
        for e in events
        if e.get("reason") in ("CreatedPod", "ReplacedPod")
        and e["message"].startswith("Created pod ")
        and e["involvedObject"].get("name") == name
    ]


def make_cluster(plane, name: str) -> None:
    wc = {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": REPLICAS, "processesPerPod": 1},
    }
    plane.ok("apply", "-f", "-", stdin=json.dumps(wc))
    plane.wait(lambda: len(pods(plane, name)) == REPLICAS, 30, f"{REPLICAS} pods of {name}")


def delete_one_and_time_the_heal(plane, name: str, timeout: float) -> float:
    before = {p["metadata"]["name"] for p in pods(plane, name)}
    victim = sorted(before)[0]
    started = time.monotonic()
    plane.ok("delete", "pod", victim, "-n", NS, "--wait=false")
    plane.wait(
        lambda: (
            len(now := {p["metadata"]["name"] for p in pods(plane, name)}) == REPLICAS
            and victim not in now
        ),
        timeout,
        f"a replacement for {victim}",
    )
    return time.monotonic() - started


def test_one_acts_the_other_stands_by(plane, pair):
    first, second = pair
    assert holder(plane) == f"{_host()}_{first.proc.pid}"
    make_cluster(plane, "one")
    assert "holding lease" in first.log() and "standby: lease" in second.log()
    with pytest.raises(OSError):
        second.metrics()  # kopf never started in the standby: no metrics, no watches


def test_a_killed_master_is_replaced_by_the_standby(plane, pair):
    first, second = pair
    make_cluster(plane, "killed")
    first.stop(signal.SIGKILL)
    healed = delete_one_and_time_the_heal(plane, "killed", timeout=30)
    assert holder(plane) == f"{_host()}_{second.proc.pid}"
    # the goal (issue 23) is 15 s at the 95th percentile, over 10 trials: bench/, not here
    assert healed <= LEASE_DURATION_S + 5, f"the standby healed after {healed:.1f} s"
    print(f"standby healed {healed:.1f} s after the active master was SIGKILLed")


def test_a_graceful_stop_hands_over_within_2_seconds(plane, pair):
    first, second = pair
    make_cluster(plane, "graceful")
    first.stop(signal.SIGTERM)
    assert "released lease" in first.log()
    started = time.monotonic()
    plane.wait(lambda: holder(plane) == f"{_host()}_{second.proc.pid}", 10, "the hand-over")
    handed = time.monotonic() - started
    assert handed <= 2.0, f"hand-over took {handed:.1f} s"
    delete_one_and_time_the_heal(plane, "graceful", timeout=30)
    print(f"hand-over {handed:.2f} s after the active master's SIGTERM returned")


def test_a_frozen_master_never_writes_after_losing_the_lease(plane, pair):
    first, second = pair
    make_cluster(plane, "frozen")
    first.proc.send_signal(signal.SIGSTOP)
    time.sleep(1)
    healed = delete_one_and_time_the_heal(plane, "frozen", timeout=40)
    assert holder(plane) == f"{_host()}_{second.proc.pid}"
    first.proc.send_signal(signal.SIGCONT)
    assert first.proc.wait(timeout=20) == EXIT_LOST, first.log()
    time.sleep(3)  # anything the old master still had in flight would show now
    assert len(pods(plane, "frozen")) == REPLICAS
    created = created_names(plane, "frozen")
    assert len(created) == REPLICAS + 1, created  # 3 at first, 1 replacement, nothing twice
    assert "lost leadership" in first.log()
    print(f"healed {healed:.1f} s after the freeze; the old master exited on waking")


def _host() -> str:
    import socket

    return socket.gethostname()
