"""2. The worker against the seed's own stack, and 3. CPU isolation, all on 127.0.0.1 with wrk.

2: for 1 and 2 processes, rounds alternate the three servers (worker, minimal ASGI app under the
   same arbiter and worker class, Node's `cluster`), each started fresh, warmed up, then loaded
   with wrk -t1 -c32 (keep-alive) on `/`.
3: the worker at 1 and 2 processes; `/` on a fresh connection per request (wrk -c4,
   Connection: close) alone (the reference), then while one keep-alive client sends
   `/work/cpu?ms=50` back to back: the p99 ratio loaded / unloaded.
"""

from __future__ import annotations

import threading
from pathlib import Path

from common import log, median, ratio
from servers import SERVERS, serving
from wrk import wrk

CONNECTIONS = 32
CPU_PATH = "/work/cpu?ms=50"


def throughput(log_dir: Path, rounds: int, seconds: float) -> dict:
    samples: dict = {n: {s: [] for s in SERVERS} for n in (1, 2)}
    for processes in (1, 2):
        for r in range(rounds):
            order = SERVERS if r % 2 == 0 else tuple(reversed(SERVERS))
            for server in order:
                with serving(server, processes, log_dir) as running:
                    url = running.url
                    wrk(url, 1, CONNECTIONS)  # warm-up: imports, first-request paths
                    result = wrk(url, seconds, CONNECTIONS)
                samples[processes][server].append(result.to_dict())
                log(f"wrk {server} x{processes}: {result.rps:.0f} req/s p99 {result.p99_ms} ms")
    return {"samples": samples, "figures": _throughput_figures(samples)}


def _throughput_figures(samples: dict) -> dict:
    figures = {}
    for processes, by_server in samples.items():
        med = {
            server: {k: median([s[k] for s in runs]) for k in ("rps", "p50_ms", "p99_ms")}
            for server, runs in by_server.items()
        }
        worker, asgi, node = med["worker"], med["minimal_asgi"], med["node_cluster"]
        figures[f"{processes}_process"] = {
            "medians": med,
            "errors": {s: sum(x["errors"] for x in runs) for s, runs in by_server.items()},
            "worker_vs_minimal_asgi_rps": ratio(worker["rps"], asgi["rps"]),
            "worker_vs_node_rps": ratio(worker["rps"], node["rps"]),
            "worker_vs_minimal_asgi_p99": ratio(worker["p99_ms"], asgi["p99_ms"]),
            "worker_vs_node_p99": ratio(worker["p99_ms"], node["p99_ms"]),
        }
    return figures


def _cpu_stream(port: int, seconds: float) -> threading.Thread:
    url = f"http://127.0.0.1:{port}{CPU_PATH}"
    thread = threading.Thread(target=wrk, args=(url, seconds, 1), daemon=True)
    thread.start()
    return thread


def isolation(log_dir: Path, rounds: int, seconds: float) -> dict:
    samples: dict = {n: {"unloaded": [], "loaded": []} for n in (1, 2)}
    for r in range(rounds):
        for processes in (1, 2) if r % 2 == 0 else (2, 1):
            with serving("worker", processes, log_dir) as running:
                url = running.url
                wrk(url, 1, 4, close=True)
                unloaded = wrk(url, seconds, 4, close=True)
                stream = _cpu_stream(running.port, seconds + 2)
                loaded = wrk(url, seconds, 4, close=True)
                stream.join(seconds + 40)
            samples[processes]["unloaded"].append(unloaded.to_dict())
            samples[processes]["loaded"].append(loaded.to_dict())
            log(f"isolation x{processes}: p99 {unloaded.p99_ms} → {loaded.p99_ms} ms")
    figures = {}
    for processes, runs in samples.items():
        base = median([s["p99_ms"] for s in runs["unloaded"]])
        busy = median([s["p99_ms"] for s in runs["loaded"]])
        figures[f"{processes}_process"] = {
            "unloaded_p99_ms": base,
            "loaded_p99_ms": busy,
            "ratio": ratio(busy, base),
        }
    return {"samples": samples, "figures": figures}
