"""The scale benchmark's CPU verdict compares the same work at two N (bench/scale/report.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench" / "scale"))

import report


def summary(n: int, work: float, rest: float) -> dict:
    return {
        "clusters": n,
        "cpu_work_s": {"operator": work, "kcm": work / 2},
        "cpu_rest_per_s": {"operator": rest, "kcm": rest / 2},
    }


def test_cpu_proportional_to_n_holds():
    verdict = report.linear_cpu(summary(100, 30.0, 0.03), summary(1000, 330.0, 0.3))
    assert verdict["verdict"] == "holds"
    assert "x1.10" in verdict["figure"] and "x1.00" in verdict["figure"]


def test_either_part_growing_faster_misses():
    assert report.linear_cpu(summary(100, 30, 0.03), summary(1000, 400, 0.3))["verdict"] == (
        "misses"
    )
    assert report.linear_cpu(summary(100, 30, 0.03), summary(1000, 300, 0.4))["verdict"] == (
        "misses"
    )


def test_a_missing_figure_is_not_a_verdict():
    prev = summary(100, 30, 0.03)
    prev["cpu_work_s"]["operator"] = None
    assert report.linear_cpu(prev, summary(1000, 300, 0.3))["verdict"] == "n/a"


def test_the_summary_takes_the_phases_cpu_once_and_the_rest_per_second():
    phase = {"seconds": 1.0, "cpu_whole_phase": {"operator": 2.0, "kube-controller-manager": 1.0}}
    run = {
        "clusters": 10,
        "pods_per_cluster": 5,
        "phases": {
            **{
                f"{p}:{k}": dict(phase)
                for p in ("ready", "heal", "scale")
                for k in ("WorkerCluster", "Deployment")
            },
            "steady": {"seconds": 60, "cpu": {"operator": 3.0, "kube-controller-manager": 0.6}},
        },
    }
    s = report.summarize(run)
    assert s["cpu_work_s"] == {"operator": 6.0, "kcm": 3.0}
    assert s["cpu_rest_per_s"] == {"operator": 0.05, "kcm": 0.01}
