"""latest.md: the figures of latest.json as short Markdown tables, each with its reference."""

from __future__ import annotations


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _goal(holds: bool | None) -> str:
    return {True: "holds", False: "**misses**", None: "n/a"}[holds]


def _machine(m: dict) -> list[str]:
    return [
        f"Machine: {m['nproc']} CPUs, {m['memory_gib']} GiB, kernel {m['kernel']}, "
        f"Python {m['python']}, load average at start {m['loadavg_at_start']}, {m['date']}. "
        "Shared with other jobs: absolute numbers are noisy, ratios compare A and B measured "
        "alternately in the same run.",
        "",
    ]


def _controller(section: dict) -> list[str]:
    lines = [
        "## 1. Master (operator) vs built-in controller (Deployment)",
        "",
        "Reference: a Deployment with the operator's own pod template, same replicas, measured "
        "in alternation (A B A B). Goal: ratio <= 1.2 and 0 failed requests.",
        "",
        "| measure | operator | Deployment | ratio | goal |",
        "|---|---|---|---|---|",
    ]
    for key, fig in section["figures"].items():
        ratio_cell = _fmt(fig.get("ratio")) if "ratio" in fig else "-"
        goal = _goal(fig["holds"])
        if key == "rollout_failed_requests":
            goal += f" (of {fig['sent']['WorkerCluster']} / {fig['sent']['Deployment']} sent)"
        lines.append(
            f"| {fig['label']} ({fig['unit']}) | {_fmt(fig['operator'])} | "
            f"{_fmt(fig['deployment'])} | {ratio_cell} | {goal} |"
        )
    return [*lines, ""]


def _http(section: dict) -> list[str]:
    lines = [
        "## 2. Worker vs the seed's stack (wrk -t1 -c32, keep-alive, `GET /`, 127.0.0.1)",
        "",
        "References: a minimal ASGI hello app under the same arbiter and worker class, and "
        "Node's `cluster` hello with the same process count. Medians of alternated rounds.",
        "",
        "| processes | server | req/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    for procs, fig in section["figures"].items():
        for server, med in fig["medians"].items():
            lines.append(
                f"| {procs[0]} | {server} | {_fmt(med['rps'])} | {_fmt(med['p50_ms'])} | "
                f"{_fmt(med['p99_ms'])} |"
            )
    lines += ["", "| processes | worker / minimal ASGI (req/s) | goal >= 0.85 | worker / Node |"]
    lines.append("|---|---|---|---|")
    for procs, fig in section["figures"].items():
        r = fig["worker_vs_minimal_asgi_rps"]
        holds = None if r is None else r >= 0.85
        lines.append(
            f"| {procs[0]} | {_fmt(r)} | {_goal(holds)} | {_fmt(fig['worker_vs_node_rps'])} |"
        )
    return [*lines, ""]


def _isolation(section: dict) -> list[str]:
    lines = [
        "## 3. CPU isolation: p99 of `/` while one client streams `/work/cpu?ms=50`",
        "",
        "Reference: the unloaded p99 of the same server in the same round (wrk -c4, a fresh "
        "connection per request).",
        "",
        "| processes | unloaded p99 ms | loaded p99 ms | ratio |",
        "|---|---|---|---|",
    ]
    for procs, fig in section["figures"].items():
        lines.append(
            f"| {procs[0]} | {_fmt(fig['unloaded_p99_ms'])} | {_fmt(fig['loaded_p99_ms'])} | "
            f"{_fmt(fig['ratio'])} |"
        )
    return [*lines, ""]


def _efficiency(section: dict) -> list[str]:
    steady, burst = section.get("steady_state") or {}, section.get("burst") or {}
    steady, burst = ({} if "error" in x else x for x in (steady, burst))
    lines = ["## 4. Operator efficiency", ""]
    if steady:
        per = steady["requests_per_steady_reconcile"]
        calls = ", ".join(f"{k} x{v}" for k, v in per["by_call"].items())
        writes = steady["operator_writes_on_its_objects"]
        lines += [
            "Steady state, one WorkerCluster (2 pods x 2 processes), "
            f"window {steady['window_s']} s:",
            "",
            "| measure | value | goal |",
            "|---|---|---|",
            f"| writes to its WorkerCluster, pods, Service, Events | {writes} | "
            f"0: {_goal(writes == 0)} |",
            f"| kopf peering keep-alive writes (ClusterKopfPeering) | "
            f"{steady['kopf_peering_keepalive_writes']} | 0: "
            f"{_goal(steady['kopf_peering_keepalive_writes'] == 0)} |",
            f"| reconciles in the window (operator log) | {steady['reconciles_in_window']} | |",
            f"| operator pod unchanged during the window | {steady['operator_pod_unchanged']} | |",
            f"| API requests per steady reconcile | {per['requests']} ({calls}) | |",
            f"| writes per steady reconcile | {per['writes']} | 0: {_goal(per['writes'] == 0)} |",
            f"| operator RSS / working set, MiB (kubelet) | {steady['rss_after'].get('rss_mib')} / "
            f"{steady['rss_after'].get('working_set_mib')} | |",
            "",
        ]
    if burst:
        op, dep = burst["operator"], burst["deployment"]
        lines += [
            "20 at once (1 replica x 1 process each), reference: 20 Deployments:",
            "",
            "| measure | operator | Deployment | ratio |",
            "|---|---|---|---|",
            f"| all 20 pods created (s) | {_fmt(op['all_pods_created_s'])} | "
            f"{_fmt(dep['all_pods_created_s'])} | {_fmt(burst['ratio_created'])} |",
            f"| all 20 Ready (s) | {_fmt(op['all_ready_s'])} | {_fmt(dep['all_ready_s'])} | "
            f"{_fmt(burst['ratio_ready'])} |",
            f"| operator RSS after the burst, MiB | "
            f"{burst['operator_rss_after_burst'].get('rss_mib')} | | |",
            "",
        ]
    return lines


def _profile(section: dict) -> list[str]:
    lines = [
        "## Largest gap, profiled: worker vs minimal ASGI (py-spy, 1 process under wrk)",
        "",
        "| server | samples | self time by package (top 6) |",
        "|---|---|---|",
    ]
    for server, prof in section.items():
        if "skipped" in prof:
            lines.append(f"| {server} | - | {prof['skipped']} |")
            continue
        top = prof["self_by_package"][:6]
        packages = ", ".join(f"{p['function']} {p['percent']}%" for p in top)
        lines.append(f"| {server} | {prof['samples']} | {packages} |")
    worker = section.get("worker") or {}
    if worker.get("self"):
        lines += ["", "Worker, top self time:", ""]
        lines += [f"- {p['percent']}% {p['function']}" for p in worker["self"][:8]]
        svgs = [p["files"]["flamegraph"] for p in section.values() if "files" in p]
        lines += ["", f"Flamegraphs: {', '.join(svgs)}"]
    return [*lines, ""]


SECTIONS = (
    ("master_vs_controller", _controller),
    ("worker_vs_seed", _http),
    ("cpu_isolation", _isolation),
    ("operator_efficiency", _efficiency),
    ("profile", _profile),
)


def markdown(results: dict) -> str:
    lines = ["# workerlab benchmarks (`make bench`)", "", *_machine(results["machine"])]
    for key, render in SECTIONS:
        section = results.get(key)
        if section is None:
            continue
        parts = [section, *section.values()]
        failures = [v["error"] for v in parts if isinstance(v, dict) and "error" in v]
        if failures:
            lines += [f"## {key}: failed", "", *[f"- `{f}`" for f in failures], ""]
        if "error" not in section:
            lines += render(section)
    lines.append(f"Total run time: {results['total_run_s']} s.")
    return "\n".join(lines) + "\n"
