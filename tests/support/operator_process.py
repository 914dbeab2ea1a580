"""The operator as a real process for the integration suites: `python -m workerlab.operator
--all-namespaces` against a `ControlPlane`, with the workerlab-operator service account's token
(its RBAC, never admin), its metrics endpoint on a free loopback port, each start logging to
operator-N.log in its own directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from support.control_plane import ControlPlane, free_port


class OperatorProcess:
    def __init__(self, plane: ControlPlane, workdir: Path, *args: str) -> None:
        self.plane, self.dir, self.args = plane, workdir, args
        self.proc: subprocess.Popen | None = None
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.starts = 0

    def start(self, until: str = "metrics") -> None:
        """Start and wait until it serves: "metrics" (it acts: kopf's startup ran), "liveness"
        (a standby, campaigning for the Lease, answers only that)."""
        token = self.plane.ok(
            "create", "token", "workerlab-operator", "-n", "workerlab-system", "--duration=2h"
        ).strip()
        kubeconfig = self.dir / "operator-kubeconfig"
        self.plane.write_kubeconfig(kubeconfig, token)
        self.starts += 1
        with self._log_path().open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "workerlab.operator",
                    "--all-namespaces",
                    f"--metrics-port={self.metrics_port}",
                    f"--liveness=http://127.0.0.1:{self.liveness_port}/healthz",
                    *self.args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "KUBECONFIG": str(kubeconfig)},
                cwd=self.dir,  # never the repo root: operator/ would shadow the stdlib module
            )
        ready = self.metrics if until == "metrics" else self.alive
        self.plane.wait(ready, 30, f"operator {until} endpoint")

    def alive(self) -> bool:
        url = f"http://127.0.0.1:{self.liveness_port}/healthz"
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def metrics(self) -> dict[str, float]:
        """The `workerlab_*` samples of GET /metrics (an OSError while it does not answer)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
        values = {}
        for line in text.splitlines():
            if line.startswith("workerlab_") and " " in line:
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def log(self) -> str:
        """The current start's log."""
        return self._log_path().read_text(errors="replace")

    def lines(self) -> list[str]:
        return self.log().splitlines()

    def _log_path(self) -> Path:
        return self.dir / f"operator-{self.starts}.log"
