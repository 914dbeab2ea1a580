"""Fail-over of the cluster-level master (issue 23, item 4): how long the WorkerClusters go without
a master when the active operator instance is killed, frozen or stopped, over N trials each,
against kopf peering with its defaults measured in the same run.

A real control plane on loopback (tests/support/control_plane.py: etcd, kube-apiserver,
kube-controller-manager; no kubelet, so "acting" is creating the replacement pod object), two
`python -m workerlab.operator --leader-elect` processes with the operator's RBAC. Each trial deletes
one pod of a 3-pod WorkerCluster the moment the active instance goes, and times its replacement:

- kill: SIGKILL (a crash): the standby waits for the Lease to expire;
- freeze: SIGSTOP past the Lease, then SIGCONT (a machine that stopped and came back): the
  standby takes over, and the old one must exit on waking without writing (fencing);
- stop: SIGTERM (a rollout of the operator): the Lease is released, hand-over at once.
Across all trials: pods created twice (two actors) and heals lost (nobody acted), from the
operators' Events.

Reference: two processes of a minimal kopf operator (peer.py) with kopf's default peering
(keep-alive lifetime 60 s), priorities 100 and 50; the high one SIGKILLed, a ConfigMap poked, the
time until the low one answers it.

    .venv/bin/python bench/failover/run.py [--trials 10] [--kopf-trials 10]   # ~20 min
Writes bench/results/failover.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the integration tests' launchers

from support.control_plane import ControlPlane  # noqa: E402
from support.operator_process import OperatorProcess  # noqa: E402
from support.tools import tool  # noqa: E402

from workerlab.api.resource import OPERATOR_LEASE, OPERATOR_NAMESPACE  # noqa: E402
from workerlab.operator.leadership import EXIT_LOST, LEASE_DURATION_S  # noqa: E402

NS = "failover"
REPLICAS = 3
ELECT = ("--leader-elect", f"--leader-election-namespace={OPERATOR_NAMESPACE}")
GOALS = {"kill": 15.0, "freeze": LEASE_DURATION_S + 5.0, "stop": 2.0}
HEAL_TIMEOUT_S = 120
KOPF_TIMEOUT_S = 180
PEERING = "failover-bench"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "min": round(min(values), 2),
        "median": round(statistics.median(values), 2),
        "p95": round(p95(values), 2),
        "max": round(max(values), 2),
        "all": [round(v, 2) for v in values],
    }


class Bench:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.plane = ControlPlane(workdir)
        self.created_before = 0
        self.heals = 0
        self.lost_heals = 0

    # -- setup ---------------------------------------------------------------------------------

    def start(self) -> None:
        self.plane.start()
        ok = self.plane.ok
        ok("apply", "-k", str(REPO / "manifests"))
        rbac = subprocess.run(
            [
                tool("helm"), "template", "workerlab", str(REPO / "charts" / "workerlab"),
                "--namespace", OPERATOR_NAMESPACE, "--set", "operator.leaderElection=true",
                "--show-only", "templates/rbac.yaml",
            ],
            capture_output=True, text=True, check=True, timeout=120,
        ).stdout  # fmt: skip
        docs = [d for d in rbac.split("\n---\n") if "workerlab-operator-leader-election" in d]
        ok("apply", "-f", "-", stdin="\n---\n".join(docs))
        ok("create", "namespace", NS)
        wc = {
            "apiVersion": "workerlab.dev/v1alpha1",
            "kind": "WorkerCluster",
            "metadata": {"name": "bench", "namespace": NS},
            "spec": {"replicas": REPLICAS, "processesPerPod": 1},
        }
        ok("apply", "-f", "-", stdin=json.dumps(wc))

    def operator(self, name: str) -> OperatorProcess:
        workdir = self.dir / name
        workdir.mkdir(exist_ok=True)
        return OperatorProcess(self.plane, workdir, *ELECT, "--log-format=plain")

    # -- observing -----------------------------------------------------------------------------

    def holder(self) -> str:
        lease = self.plane.json("get", "lease", OPERATOR_LEASE, "-n", OPERATOR_NAMESPACE)
        return str(lease["spec"].get("holderIdentity") or "")

    def pods(self) -> set[str]:
        items = self.plane.json("get", "pods", "-n", NS)["items"]
        return {p["metadata"]["name"] for p in items if not p["metadata"].get("deletionTimestamp")}

    def created(self) -> int:
        events = self.plane.json("get", "events", "-n", NS)["items"]
        return sum(
            e.get("count", 1)
            for e in events
            if e.get("reason") in ("CreatedPod", "ReplacedPod")
            and e["message"].startswith("Created pod ")
        )

    def heal(self, go: Any) -> float | None:
        """Delete a pod as `go()` takes the active instance down; seconds until replaced."""
        self.plane.wait(lambda: len(self.pods()) == REPLICAS, 60, f"{REPLICAS} pods")
        victim = sorted(self.pods())[0]
        started = time.monotonic()
        go()
        self.plane.ok("delete", "pod", victim, "-n", NS, "--wait=false")
        deadline = started + HEAL_TIMEOUT_S
        while time.monotonic() < deadline:
            now = self.pods()
            if victim not in now and len(now) == REPLICAS:
                self.heals += 1
                return time.monotonic() - started
            time.sleep(0.1)
        self.lost_heals += 1
        return None

    # -- trials --------------------------------------------------------------------------------

    def lease_trials(self, trials: int) -> dict[str, Any]:
        pair = [self.operator("a"), self.operator("b")]
        pair[0].start()
        pair[1].start(until="liveness")
        self.plane.wait(lambda: len(self.pods()) == REPLICAS, 60, "the first pods")
        self.created_before = self.created()
        times: dict[str, list[float]] = {"kill": [], "freeze": [], "stop": []}
        fenced: list[bool] = []
        try:
            for trial in range(trials):
                for kind in ("kill", "freeze", "stop"):
                    active = self._active(pair)
                    go = {
                        "kill": lambda a=active: a.proc.send_signal(signal.SIGKILL),
                        "freeze": lambda a=active: a.proc.send_signal(signal.SIGSTOP),
                        "stop": lambda a=active: a.proc.send_signal(signal.SIGTERM),
                    }[kind]
                    took = self.heal(go)
                    if took is not None:
                        times[kind].append(took)
                    if kind == "freeze":
                        active.proc.send_signal(signal.SIGCONT)
                        try:
                            code = active.proc.wait(timeout=30)
                        except subprocess.TimeoutExpired:
                            code = None
                        fenced.append(code == EXIT_LOST)
                    else:
                        active.proc.wait(timeout=30)
                    log(f"lease trial {trial + 1}/{trials} {kind}: {took and round(took, 2)} s")
                    active.start(until="liveness")  # back, as its pod's container would be
        finally:
            for op in pair:
                if op.proc and op.proc.poll() is None:
                    op.proc.send_signal(signal.SIGCONT)
                op.stop()
        time.sleep(2)
        expected = self.heals  # one pod created per heal, nothing else changed
        duplicates = self.created() - self.created_before - expected
        return {
            "times": {kind: summary(values) for kind, values in times.items()},
            "fenced": f"{sum(fenced)}/{len(fenced)}",
            "heals": self.heals,
            "lost_heals": self.lost_heals,
            "duplicate_creations": duplicates,
        }

    def _active(self, pair: list[OperatorProcess]) -> OperatorProcess:
        """The instance holding the Lease, once the other one stands by."""

        def known() -> bool:
            return self.holder() in {_identity(op) for op in pair}

        self.plane.wait(known, 60, "a Lease holder among the pair")
        holder = self.holder()
        active = next(op for op in pair if _identity(op) == holder)
        standby = next(op for op in pair if op is not active)
        self.plane.wait(lambda: standby.proc.poll() is None and standby.alive(), 30, "a standby")
        return active

    # -- the reference -------------------------------------------------------------------------

    def kopf_trials(self, trials: int) -> dict[str, Any]:
        self.plane.ok(
            "apply", "-f", "-",
            stdin=json.dumps({
                "apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                "metadata": {"name": PEERING},
            }),
        )  # fmt: skip
        cm = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "poke",
                "namespace": NS,
                "labels": {"workerlab.dev/failover-bench": "ping"},
            },
            "data": {"ping": "0"},
        }
        self.plane.ok("apply", "-f", "-", stdin=json.dumps(cm))
        times: list[float] = []
        low_log = self.dir / "peer-low.log"
        for trial in range(trials):
            high = self._peer("high", 100)
            low: subprocess.Popen | None = None
            try:
                if self._poke(f"warm-{trial}", "high", 60) is None:
                    raise RuntimeError("the high-priority kopf peer never answered")
                low = self._peer("low", 50)
                # kopf starts paused until its first look at the peers; once logged in, the low
                # one sees the high one and stays paused (it must not answer the warm-up ping).
                self.plane.wait(
                    lambda: "authentication has finished" in low_log.read_text(errors="replace"),
                    60,
                    "the low-priority peer to log in",
                )
                time.sleep(3)
                data = self.plane.json("get", "configmap", "poke", "-n", NS).get("data") or {}
                if data.get("pong") != f"warm-{trial} high":
                    raise RuntimeError(
                        f"the low-priority peer acted while the high one ran: {data}"
                    )
                started = time.monotonic()
                os.killpg(high.pid, signal.SIGKILL)
                took = self._poke(f"trial-{trial}", "low", KOPF_TIMEOUT_S, started)
                log(f"kopf peering trial {trial + 1}/{trials}: {took and round(took, 1)} s")
                if took is not None:
                    times.append(took)  # a miss shows as n < trials
            finally:
                for peer in (high, low):
                    if peer is not None:
                        _stop_group(peer)
        return {"times": {"kill": summary(times)}, "trials": trials}

    def _peer(self, name: str, priority: int) -> subprocess.Popen:
        out = open(self.dir / f"peer-{name}.log", "wb")  # noqa: SIM115 (the process keeps it)
        return subprocess.Popen(
            [
                sys.executable, "-m", "kopf", "run", str(HERE / "peer.py"),
                "--all-namespaces", f"--peering={PEERING}", f"--priority={priority}",
            ],
            stdout=out, stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True,
            env={**os.environ, "KUBECONFIG": str(self.plane.kubeconfig), "PEER_NAME": name},
        )  # fmt: skip

    def _poke(
        self, ping: str, by: str, timeout: float, started: float | None = None
    ) -> float | None:
        started = started or time.monotonic()
        patch = json.dumps({"data": {"ping": ping}})
        self.plane.ok("patch", "configmap", "poke", "-n", NS, "--type=merge", "-p", patch)
        deadline = started + timeout
        while time.monotonic() < deadline:
            data = self.plane.json("get", "configmap", "poke", "-n", NS).get("data") or {}
            if data.get("pong") == f"{ping} {by}":
                return time.monotonic() - started
            time.sleep(0.2)
        return None

    def stop(self) -> None:
        self.plane.stop()


def _identity(op: OperatorProcess) -> str:
    return f"{socket.gethostname()}_{op.proc.pid}" if op.proc else ""


def _stop_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def report(results: dict[str, Any]) -> str:
    lease, kopf = results["lease"], results["kopf_default"]
    reference = kopf["times"]["kill"].get("p95")
    rows = []
    for kind, goal in GOALS.items():
        got = lease["times"][kind].get("p95")
        holds = got is not None and got <= goal and lease["times"][kind]["n"] == results["trials"]
        ratio = f"{got / reference:.2f}" if kind == "kill" and got and reference else "-"
        shown = f"{reference} s" if kind == "kill" else "-"
        rows.append(
            f"| {kind} | <= {goal:.0f} s | {got} s | {lease['times'][kind].get('median')} s | "
            f"{shown} | {ratio} | {'holds' if holds else 'misses'} |"
        )
    zero = lease["duplicate_creations"] == 0 and lease["lost_heals"] == 0
    return "\n".join(
        [
            "# Fail-over of the cluster-level master (bench/failover/run.py)",
            "",
            f"{results['machine']}; {results['trials']} trials per kind, "
            f"{kopf['trials']} for the reference; the Lease: {LEASE_DURATION_S:.0f} s.",
            "",
            "Time from the active instance going down (a pod deleted at that moment) to the "
            "pod's replacement by the other one; p95 over the trials.",
            "",
            "| how the active one goes | goal (p95) | Lease p95 | Lease median | "
            "kopf peering default p95 | ratio | |",
            "|---|---|---|---|---|---|---|",
            *rows,
            f"| never two actors | 0 duplicates, 0 lost | {lease['duplicate_creations']} "
            f"duplicates, {lease['lost_heals']} lost of {lease['heals'] + lease['lost_heals']} "
            f"| fenced on waking: {lease['fenced']} | - | - | {'holds' if zero else 'misses'} |",
            "",
            "Every sample: failover.json.",
        ]
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--kopf-trials", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    bench = Bench(Path(tempfile.mkdtemp(prefix="workerlab-failover-")))
    log(f"control plane in {bench.dir}")
    started = time.monotonic()
    try:
        bench.start()
        lease = bench.lease_trials(args.trials)
        kopf = bench.kopf_trials(args.kopf_trials)
    finally:
        bench.stop()
    results = {
        "machine": f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"load {os.getloadavg()[0]:.2f}",
        "trials": args.trials,
        "took_s": round(time.monotonic() - started),
        "lease": lease,
        "kopf_default": kopf,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "failover.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "failover.md").write_text(report(results) + "\n")
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
