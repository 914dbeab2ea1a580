"""Each cost against N for both controllers (matplotlib: `pip install -e '.[bench]'`).

.venv/bin/python bench/scale/plot.py bench/results/scale.json   # redraw from the results
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

OP, REF = "#d6604d", "#4393c3"


def plot(summary: list[dict[str, Any]], path: Path) -> None:
    ns = [s["clusters"] for s in summary]
    fig, axes = plt.subplots(2, 3, figsize=(14, 8))
    panels = [
        (
            "time to all Ready (s)",
            lambda s: s["ready"]["operator_s"],
            lambda s: s["ready"]["deployment_s"],
        ),
        (
            "heal 10% of pods (s)",
            lambda s: s["heal"]["operator_s"],
            lambda s: s["heal"]["deployment_s"],
        ),
        (
            "scale 5 -> 2 (s)",
            lambda s: s["scale"]["operator_s"],
            lambda s: s["scale"]["deployment_s"],
        ),
        (
            "API requests, whole run (reads + writes)",
            lambda s: s["requests_total"]["operator_read"] + s["requests_total"]["operator_write"],
            lambda s: (
                s["requests_total"]["reference_read"] + s["requests_total"]["reference_write"]
            ),
        ),
        ("CPU seconds, whole run", lambda s: s["cpu_s"]["operator"], lambda s: s["cpu_s"]["kcm"]),
        (
            "peak RSS (MiB)",
            lambda s: s["peak_rss_mib"]["operator"],
            lambda s: s["peak_rss_mib"]["kcm"],
        ),
    ]
    for ax, (title, op, ref) in zip(axes.flat, panels, strict=True):
        ax.plot(ns, [op(s) for s in summary], "o-", color=OP, label="operator (kopf)")
        ax.plot(
            ns,
            [ref(s) for s in summary],
            "s--",
            color=REF,
            label="kube-controller-manager (Deployment)",
        )
        ax.set_xscale("log")
        ax.set_yscale("log" if "RSS" not in title else "linear")
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.set_xlabel("WorkerClusters / Deployments (x5 pods each)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(
        "workerlab operator vs Deployment controller at scale (kwok nodes, real control plane)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    import json
    import sys

    source = Path(sys.argv[1])
    plot(json.loads(source.read_text())["summary"], source.with_suffix(".png"))
