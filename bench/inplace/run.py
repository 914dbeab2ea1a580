"""Both levels scaled without a restart (issue 26): processesPerPod 2→4→1 and a CPU resize in
place, against the rolling update the same change cost before, measured in the same run.

On the lab's kind cluster (`make up`), in a namespace of its own: wc/scaled, 2 pods behind a
NodePort, under bounded load from the host on fresh connections (to a node's address: kind's
node container). Each trial times, from the patch:
- processes 2→4 and 4→1 in place: until every pod's arbiter runs the new count (its
  /processes, read through the API server's pod proxy every 0.25 s);
- a CPU resize in place: until every pod's container reports the new CPU request
  (containerStatuses[].resources);
- the rolling reference: a template change (an env var) that replaces both pods, until the
  WorkerCluster is Ready again with 2 new pods running the count.
In-place phases also count pod restarts and new pod names (goal: 0), and every phase the
failed requests (goal: 0).

    .venv/bin/python bench/inplace/run.py [--trials 3]    # ~2 min a trial
Writes bench/results/inplace.{json,md}.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CONTEXT = "kind-" + os.environ.get("CLUSTER_NAME", "workerlab")
NS, WC = "inplace-bench", "scaled"
CLIENTS = 6
MAX_REQUESTS = 200_000  # the load is bounded in count and in time
MAX_LOAD_S = 1800
PHASE_TIMEOUT_S = 300
GOAL_RATIO = 0.25


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def kubectl(*args: str, stdin: str | None = None, timeout: float = 120) -> str:
    done = subprocess.run(
        ["kubectl", "--context", CONTEXT, *args],
        input=stdin, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args[:4])}...: {done.stderr.strip()[-800:]}")
    return done.stdout


def get(*args: str) -> dict[str, Any]:
    return dict(json.loads(kubectl("get", *args, "-o", "json")))


def live_pods() -> dict[str, dict]:
    items = get("pods", "-n", NS, "-l", f"app.kubernetes.io/instance={WC}")["items"]
    return {p["metadata"]["name"]: p for p in items if not p["metadata"].get("deletionTimestamp")}


def all_pods() -> set[str]:
    """Every pod of the cluster, terminating ones too."""
    items = get("pods", "-n", NS, "-l", f"app.kubernetes.io/instance={WC}")["items"]
    return {p["metadata"]["name"] for p in items}


def pod_ready(pod: dict) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def alive_count(pod: str) -> int | None:
    try:
        raw = kubectl("get", "--raw", f"/api/v1/namespaces/{NS}/pods/{pod}:8000/proxy/processes")
    except RuntimeError:
        return None
    return sum(1 for p in json.loads(raw)["processes"] if p["alive"])


def restarts(pods: dict[str, dict]) -> int:
    return sum(
        cs.get("restartCount", 0)
        for p in pods.values()
        for cs in p.get("status", {}).get("containerStatuses") or []
    )


def patch(spec: dict[str, Any]) -> None:
    kubectl("-n", NS, "patch", "wc", WC, "--type", "merge", "-p", json.dumps({"spec": spec}))


def wait(check, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < PHASE_TIMEOUT_S:
        if check():
            return time.monotonic() - started
        time.sleep(0.25)
    raise RuntimeError(f"{what}: not within {PHASE_TIMEOUT_S} s")


class Load(threading.Thread):
    """CLIENTS threads of GET / on fresh connections; failures stamped with their time."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(daemon=True)
        self.host, self.port = host, port
        self.stop = threading.Event()
        self.ok: list[float] = []
        self.failed: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def client(self) -> None:
        deadline = time.monotonic() + MAX_LOAD_S
        while not self.stop.is_set() and time.monotonic() < deadline:
            if len(self.ok) + len(self.failed) >= MAX_REQUESTS:
                return
            at = time.monotonic()
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                conn.request("GET", "/", headers={"Connection": "close"})
                response = conn.getresponse()
                response.read()
                conn.close()
                good, detail = response.status == 200, f"HTTP {response.status}"
            except OSError as error:
                good, detail = False, repr(error)
            with self._lock:
                (self.ok.append(at) if good else self.failed.append((at, detail)))
            time.sleep(0.01)

    def run(self) -> None:
        threads = [threading.Thread(target=self.client, daemon=True) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def between(self, start: float, end: float) -> tuple[int, list[str]]:
        with self._lock:
            ok = sum(1 for t in self.ok if start <= t <= end)
            failed = [d for t, d in self.failed if start <= t <= end]
        return ok, failed


def setup() -> tuple[str, int]:
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NS, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }
    wc = {
        "apiVersion": "workerlab.dev/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {"name": WC, "namespace": NS},
        "spec": {"replicas": 2, "processesPerPod": 2, "service": {"type": "NodePort"}},
    }
    for manifest in (namespace, wc):
        kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
    kubectl("-n", NS, "wait", "--for=condition=Ready", f"wc/{WC}", "--timeout=300s")
    port = get("service", WC, "-n", NS)["spec"]["ports"][0]["nodePort"]
    node = get("nodes")["items"][0]
    address = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    return address, int(port)


def in_place_phase(load: Load, name: str, spec: dict, done) -> dict[str, Any]:
    before = live_pods()
    started = time.monotonic()
    patch(spec)
    took = wait(lambda: done(live_pods()), name)
    time.sleep(1)  # requests in flight at the end count too
    after = live_pods()
    ok, failed = load.between(started, time.monotonic())
    figures = {
        "seconds": round(took, 2),
        "requests_ok": ok,
        "requests_failed": len(failed),
        "failures": failed[:5],
        "new_pod_names": sorted(set(after) - set(before)),
        "restarts": restarts(after) - restarts(before),
    }
    log(f"{name}: {json.dumps(figures)}")
    return figures


def runs(count: int):
    return lambda pods: pods and all(alive_count(name) == count for name in pods)


def cpu_applied(cpu: str):
    def check(pods: dict[str, dict]) -> bool:
        statuses = [cs for p in pods.values() for cs in p["status"].get("containerStatuses") or []]
        return bool(statuses) and all(
            ((cs.get("resources") or {}).get("requests") or {}).get("cpu") == cpu for cs in statuses
        )

    return check


def trial(load: Load, number: int) -> dict[str, Any]:
    patch({"processesPerPod": 2, "resources": None, "env": None})
    kubectl("-n", NS, "wait", "--for=condition=Ready", f"wc/{WC}", "--timeout=300s")
    time.sleep(2)
    result = {
        "up_2_to_4": in_place_phase(load, "processes 2→4", {"processesPerPod": 4}, runs(4)),
        "down_4_to_1": in_place_phase(load, "processes 4→1", {"processesPerPod": 1}, runs(1)),
    }
    # CPU only: the memory the operator sizes for 1 process, stated, and a CPU request 3x.
    sized = {"requests": {"cpu": "150m", "memory": "88Mi"}, "limits": {"memory": "224Mi"}}
    result["cpu_resize"] = in_place_phase(
        load, "cpu 50m→150m", {"resources": sized}, cpu_applied("150m")
    )
    # The rolling reference: the pods replaced for a template change. Timed twice: until 2 new
    # pods serve the count (the WorkerCluster Ready again), and until no pod of the old template
    # is left (they drain: preStop, then their in-flight requests), when every pod runs it.
    before = set(live_pods())
    started = time.monotonic()
    patch({"env": [{"name": "BENCH_ROLL", "value": str(number)}]})

    def serving(pods: dict[str, dict]) -> bool:
        ready = [n for n, p in pods.items() if pod_ready(p)]
        return len(pods) == 2 and not set(pods) & before and len(ready) == 2 and runs(1)(pods)

    ready_s = wait(lambda: serving(live_pods()), "rolling update")
    done_s = wait(lambda: not set(all_pods()) & before, "old pods gone") + ready_s
    ok, failed = load.between(started, time.monotonic())
    result["rolling"] = {
        "seconds": round(done_s, 2),
        "new_pods_serving_s": round(ready_s, 2),
        "requests_ok": ok,
        "requests_failed": len(failed),
        "failures": failed[:5],
    }
    log(f"rolling: {json.dumps(result['rolling'])}")
    return result


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def report(results: dict[str, Any]) -> str:
    trials = results["trials"]
    rolling = median([t["rolling"]["seconds"] for t in trials])
    serving = median([t["rolling"]["new_pods_serving_s"] for t in trials])
    rows, verdicts = [], []
    for key, label in (
        ("up_2_to_4", "processes 2→4 in place"),
        ("down_4_to_1", "processes 4→1 in place"),
        ("cpu_resize", "CPU 50m→150m in place"),
    ):
        seconds = median([t[key]["seconds"] for t in trials])
        ratio = seconds / rolling
        failed = sum(t[key]["requests_failed"] for t in trials)
        restarted = sum(t[key]["restarts"] for t in trials)
        renamed = sum(len(t[key]["new_pod_names"]) for t in trials)
        ok = ratio <= GOAL_RATIO and not failed and not restarted and not renamed
        verdicts.append(ok)
        rows.append(
            f"| {label} | {seconds} s ({', '.join(str(t[key]['seconds']) for t in trials)}) | "
            f"{ratio:.2f} | {seconds / serving:.2f} | {failed} | {restarted} | {renamed} | "
            f"{'holds' if ok else 'misses'} |"
        )
    rolling_failed = sum(t["rolling"]["requests_failed"] for t in trials)
    return "\n".join(
        [
            "# Scaling both levels without a restart (bench/inplace/run.py)",
            "",
            f"{results['machine']}; {len(trials)} trials; wc/scaled, 2 pods, {CLIENTS} clients "
            "on fresh connections to a node's NodePort all along. Times from the patch until "
            "every pod runs the new count (its arbiter's /processes) or reports the new CPU "
            "(containerStatuses). The rolling reference, an env change in the same trial: until "
            "every pod runs the new template (the old pods gone: they drain for their preStop "
            "5 s and in-flight requests), and, for comparison, until 2 new pods serve (the "
            "WorkerCluster Ready again; old pods still terminating).",
            "",
            f"Rolling reference: median {rolling} s until every pod runs it "
            f"({', '.join(str(t['rolling']['seconds']) for t in trials)}); new pods serving "
            f"after a median {serving} s; {rolling_failed} failed requests.",
            "",
            f"| change | time, median (each trial) | ratio to rolling (goal <= {GOAL_RATIO}) | "
            "ratio to new pods serving | failed requests | pod restarts | new pod names | "
            "verdict |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"All goals: {'hold' if all(verdicts) else 'do not all hold'}. On kind with the "
            "image on the node, a new pod starts in about 2 s: a rolling update is at its "
            "fastest here (elsewhere an image pull and a slower start add to it, not to a "
            "change in place). Every figure: inplace.json.",
        ]
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    started = time.monotonic()
    host, port = setup()
    load = Load(host, port)
    load.start()
    try:
        trials = [trial(load, n) for n in range(1, args.trials + 1)]
    finally:
        load.stop.set()
        load.join(timeout=30)
        kubectl("delete", "namespace", NS, "--wait=false")
    results = {
        "machine": f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"load {os.getloadavg()[0]:.2f}",
        "took_s": round(time.monotonic() - started),
        "requests_total": len(load.ok) + len(load.failed),
        "trials": trials,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "inplace.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "inplace.md").write_text(report(results) + "\n")
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
