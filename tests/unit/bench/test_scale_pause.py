"""`make bench-scale` pauses the lab's kind cluster for its run, and only the lab's
(bench/scale/run.py), against a fake `docker`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench" / "scale"))

import run


class FakeDocker:
    def __init__(self, clusters: dict[str, list[str]], pause_fails: bool = False) -> None:
        self.clusters = clusters
        self.pause_fails = pause_fails
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        out, code = "", 0
        if argv[1] == "ps":
            label = argv[argv.index("--filter") + 1]
            wanted = label.partition("=")[2].partition("=")[2]
            out = "\n".join(
                n for c, nodes in self.clusters.items() if not wanted or c == wanted for n in nodes
            )
        elif argv[1] == "pause" and self.pause_fails:
            code = 1
        return subprocess.CompletedProcess(argv, code, out, "")

    def verbs(self) -> list[str]:
        return [" ".join(a[1:]) for a in self.calls if a[1] != "ps"]


@pytest.fixture
def docker(monkeypatch):
    def install(**kwargs) -> FakeDocker:
        fake = FakeDocker(**kwargs)
        monkeypatch.setattr(run.shutil, "which", lambda _: "/usr/bin/docker")
        monkeypatch.setattr(run.subprocess, "run", fake)
        monkeypatch.delenv("CLUSTER_NAME", raising=False)
        return fake

    return install


def test_the_labs_nodes_are_paused_for_the_run_and_resumed_after_a_failure(docker):
    fake = docker(clusters={"workerlab": ["workerlab-control-plane"], "other": ["other-node"]})
    with pytest.raises(KeyboardInterrupt), run.kind_paused(keep=False) as beside:
        assert beside == ["other-node"]  # another cluster's nodes are only warned about
        assert fake.verbs() == ["pause workerlab-control-plane"]
        raise KeyboardInterrupt
    assert fake.verbs() == ["pause workerlab-control-plane", "unpause workerlab-control-plane"]


def test_keep_kind_or_a_refused_pause_leaves_the_lab_running_and_says_so(docker):
    fake = docker(clusters={"workerlab": ["workerlab-control-plane"]})
    with run.kind_paused(keep=True) as beside:
        assert beside == ["workerlab-control-plane"]
    assert fake.verbs() == []

    fake = docker(clusters={"workerlab": ["workerlab-control-plane"]}, pause_fails=True)
    with run.kind_paused(keep=False) as beside:
        assert beside == ["workerlab-control-plane"]
    assert fake.verbs() == ["pause workerlab-control-plane"]  # nothing to resume


def test_no_docker_no_cluster(monkeypatch):
    monkeypatch.setattr(run.shutil, "which", lambda _: None)
    with run.kind_paused(keep=False) as beside:
        assert beside == []
