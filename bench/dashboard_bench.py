"""What `workerlab dashboard` costs: its memory and CPU while it serves one live page.

Two phases, each with a freshly started dashboard on 127.0.0.1 and one EventSource-like
client reading /api/stream (what an open browser tab does):

- reference: the bench namespace with no WorkerCluster (watches open, nothing to poll);
- loaded: 3 WorkerClusters x 5 pods (15 pods, 2 processes each), every Ready pod's
  /processes polled through the API server, for the window (10 minutes by default).

Reported: peak and final RSS, CPU seconds and CPU share of one core, the API server requests
per second the dashboard sends (its own count, health `api_requests`; and what 30 of them, a
class, add), the stream's events and bytes, each as a ratio of loaded to reference (the machine
is shared and noisy; a ratio from the same run is what compares).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from common import NAMESPACE, log, ratio, wait_until
from workloads import Side

from api import Api

PORT = 8097  # loopback only; away from the dashboard's default 8080
CLUSTERS, PODS_PER_CLUSTER = 3, 5
SIDES = [Side("WorkerCluster", f"dash-{i}") for i in range(CLUSTERS)]
SAMPLE_EVERY_S = 5.0
CLASS_PAGES = 30  # what a class of 30 learners, each with a dashboard open, adds
READY_TIMEOUT_S = 300
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _cpu_seconds(pid: int) -> float:
    """utime + stime of the process (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _rss_mib(pid: int) -> float:
    resident_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return resident_pages * PAGE_SIZE / 2**20


class StreamReader(threading.Thread):
    """Reads /api/stream as a browser's EventSource would, counting events and bytes."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.events, self.bytes, self.error = url, 0, 0, ""
        self.headers = headers
        self._stop = threading.Event()

    def run(self) -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(10, read=60), trust_env=False) as client,
                client.stream("GET", self.url, headers=self.headers) as response,
            ):
                for line in response.iter_lines():
                    self.bytes += len(line) + 1
                    if line.startswith("event: state"):
                        self.events += 1
                    if self._stop.is_set():
                        return
        except httpx.HTTPError as error:
            if not self._stop.is_set():
                self.error = repr(error)

    def stop(self) -> None:
        self._stop.set()


def measure(seconds: float, logs: Path, label: str) -> dict[str, Any]:
    """Start a dashboard, keep one stream open for `seconds`, sample its RSS and CPU."""
    log_file = (logs / f"dashboard-{label}.log").open("w")
    command = [str(Path(sys.executable).parent / "workerlab"), "dashboard", "--port", str(PORT)]
    process = subprocess.Popen(
        [*command, "--namespace", NAMESPACE, "--stop-after", str(seconds + 60)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{PORT}"
    printed = re.compile(rf"{re.escape(base)}/\?token=([A-Za-z0-9_-]+)")
    auth: dict[str, str] = {}  # the dashboard answers only the token it printed
    try:

        def answers() -> bool:
            found = printed.search((logs / f"dashboard-{label}.log").read_text())
            if found is None:
                return False
            auth["Authorization"] = f"Bearer {found[1]}"
            try:
                return httpx.get(
                    f"{base}/api/state", headers=auth, timeout=2, trust_env=False
                ).is_success
            except httpx.HTTPError:
                return False

        wait_until(answers, 60, what=f"dashboard ({label}) answering")

        def api_requests() -> int:
            state = httpx.get(f"{base}/api/state", headers=auth, timeout=5, trust_env=False)
            return int(state.json()["health"].get("api_requests") or 0)

        requests_at_start = api_requests()
        reader = StreamReader(f"{base}/api/stream", auth)
        reader.start()
        samples: list[tuple[float, float, float]] = []  # (elapsed s, RSS MiB, CPU s)
        started = time.monotonic()
        cpu_at_start = _cpu_seconds(process.pid)
        while (elapsed := time.monotonic() - started) < seconds:
            if process.poll() is not None:
                raise RuntimeError(f"the dashboard exited ({process.returncode}); see its log")
            samples.append((elapsed, _rss_mib(process.pid), _cpu_seconds(process.pid)))
            time.sleep(SAMPLE_EVERY_S)
        wall = time.monotonic() - started
        cpu = _cpu_seconds(process.pid) - cpu_at_start
        sent = api_requests() - requests_at_start
        state = httpx.get(f"{base}/api/state", headers=auth, timeout=5, trust_env=False).json()
        reader.stop()
        return {
            "seconds": round(wall, 1),
            "rss_peak_mib": round(max(s[1] for s in samples), 1),
            "rss_final_mib": round(samples[-1][1], 1),
            "cpu_s": round(cpu, 2),
            "cpu_share_of_one_core": round(cpu / wall, 4),
            "api_requests_per_s": round(sent / wall, 2),
            "stream_events": reader.events,
            "stream_bytes": reader.bytes,
            "stream_error": reader.error,
            "clusters_shown": len(state.get("clusters") or []),
            "pods_shown": sum(len(c.get("pods") or []) for c in state.get("clusters") or []),
            "samples": [[round(t, 1), round(r, 1), round(c, 2)] for t, r, c in samples],
        }
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        log_file.close()


def _ready_pods(api: Api) -> int:
    pods = [p for side in SIDES for p in api.instance_pods(NAMESPACE, side.name)]
    return sum(1 for p in pods if p.ready and not p.terminating)


def _delete_clusters(api: Api) -> None:
    for side in SIDES:
        api.delete(side.path)  # a 404 (nothing left over) is fine
    wait_until(
        lambda: not any(api.instance_pods(NAMESPACE, s.name) for s in SIDES),
        180,
        what="bench pods gone",
    )


def run(api: Api, window_s: float, logs: Path) -> dict[str, Any]:
    _delete_clusters(api)  # leftovers of an interrupted run
    reference_s = min(window_s, 120.0)
    log(f"dashboard: reference, no WorkerCluster, {reference_s:.0f} s")
    reference = measure(reference_s, logs, "reference")
    for side in SIDES:
        api.post(side.collection, side.body(PODS_PER_CLUSTER))
    total = CLUSTERS * PODS_PER_CLUSTER
    wait_until(lambda: _ready_pods(api) == total, READY_TIMEOUT_S, what=f"{total} bench pods Ready")
    log(f"dashboard: {CLUSTERS} WorkerClusters x {PODS_PER_CLUSTER} pods, {window_s:.0f} s")
    try:
        loaded = measure(window_s, logs, "loaded")
    finally:
        _delete_clusters(api)
    return {
        "clusters": CLUSTERS,
        "pods_per_cluster": PODS_PER_CLUSTER,
        "reference": reference,
        "loaded": loaded,
        "ratios": {
            key: ratio(loaded[key], reference[key])
            for key in ("rss_peak_mib", "rss_final_mib", "cpu_share_of_one_core")
        },
    }


def markdown(result: dict[str, Any], machine: dict[str, Any]) -> str:
    ref, loaded = result["reference"], result["loaded"]
    rows = [
        ("peak RSS (MiB)", "rss_peak_mib"),
        ("RSS at the end (MiB)", "rss_final_mib"),
        ("CPU seconds", "cpu_s"),
        ("CPU share of one core", "cpu_share_of_one_core"),
        ("API server requests per second it adds", "api_requests_per_s"),
        ("stream: state events", "stream_events"),
        ("stream: bytes", "stream_bytes"),
        ("WorkerClusters / pods on the page", None),
    ]
    lines = [
        "# What `workerlab dashboard` costs (bench/dashboard_bench.py)",
        "",
        f"Machine: {machine.get('nproc')} CPUs, load average at start "
        f"{machine.get('loadavg_at_start')}, {machine.get('date')}.",
        "",
        "One dashboard process, one open stream (as a browser tab), RSS and CPU sampled every "
        f"{SAMPLE_EVERY_S:.0f} s. Reference: the bench namespace with no WorkerCluster for "
        f"{ref['seconds']} s; loaded: {result['clusters']} WorkerClusters x "
        f"{result['pods_per_cluster']} pods (2 processes each) for {loaded['seconds']} s.",
        "",
        "| | reference | loaded | loaded / reference |",
        "|---|---|---|---|",
    ]
    for label, key in rows:
        if key is None:
            lines.append(
                f"| {label} | {ref['clusters_shown']} / {ref['pods_shown']} | "
                f"{loaded['clusters_shown']} / {loaded['pods_shown']} | |"
            )
            continue
        r = result["ratios"].get(key, "")
        lines.append(f"| {label} | {ref[key]} | {loaded[key]} | {r if r is not None else ''} |")
    errors = [p["stream_error"] for p in (ref, loaded) if p["stream_error"]]
    lines += ["", f"Stream errors: {'; '.join(errors) if errors else 'none'}.", ""]
    per_page = loaded.get("api_requests_per_s")
    if per_page is not None:
        lines += [
            f"A class: each learner runs a dashboard of their own namespace, so 30 open pages "
            f"with this load each add about {per_page * CLASS_PAGES:.0f} requests per second to "
            f"the API server ({CLASS_PAGES} x {per_page}; most of them the pods' /processes "
            "through the pod proxy, one per Ready pod per --poll). The page itself (tabs of one "
            "dashboard) adds nothing: the dashboard polls once, whatever the number of tabs.",
            "",
        ]
    return "\n".join(lines)
