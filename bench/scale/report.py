"""The scale benchmark's summary per N, its goals (holds / misses) and the markdown table."""

from __future__ import annotations

from typing import Any

RATIO_GOAL = 1.5
STEADY_GOAL = 2.0
RSS_GOAL_MIB = 250.0
LINEAR_SLACK = 1.25  # CPU per WorkerCluster may grow by this much from one N to the next


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def _count(requests: dict[str, dict[str, int]], client: str, *classes: str) -> int:
    return sum((requests.get(client) or {}).get(c, 0) for c in classes)


def summarize(run: dict[str, Any]) -> dict[str, Any]:
    phases = run.get("phases") or {}
    out: dict[str, Any] = {
        "clusters": run["clusters"],
        "pods": run["clusters"] * run["pods_per_cluster"],
    }
    for name in ("ready", "heal", "scale"):
        op = (phases.get(f"{name}:WorkerCluster") or {}).get("seconds")
        dep = (phases.get(f"{name}:Deployment") or {}).get("seconds")
        out[name] = {"operator_s": op, "deployment_s": dep, "ratio": _ratio(op, dep)}
    steady = phases.get("steady") or {}
    window = steady.get("seconds") or 0
    req = steady.get("requests") or {}
    rate = lambda client, *c: round(_count(req, client, *c) / window, 4) if window else None  # noqa: E731
    out["steady"] = {
        "window_s": window,
        "operator_rps": rate("operator", "read", "write"),
        "reference_rps": rate("reference", "read", "write"),
        "operator_writes": _count(req, "operator", "write"),
        "reference_writes": _count(req, "reference", "write"),
        "operator_event_rps": rate("operator", "event"),
        "reference_event_rps": rate("reference", "event"),
        "operator_proxy_rps": rate("operator", "proxy"),
        "operator_coordination_rps": rate("operator", "coordination"),
        "kcm_coordination_rps": (
            round(
                sum(_count(req, c, "coordination") for c in ("reference", "kcm-other")) / window, 4
            )
            if window
            else None
        ),
        "operator_cpu_s": (steady.get("cpu") or {}).get("operator"),
        "kcm_cpu_s": (steady.get("cpu") or {}).get("kube-controller-manager"),
    }
    out["steady"]["ratio"] = (
        _ratio(out["steady"]["operator_rps"], out["steady"]["reference_rps"])
        if out["steady"]["reference_rps"]
        else (0.0 if out["steady"]["operator_rps"] == 0 else None)
    )
    # Requests for the same work: the operator's while its side moved, the Deployment
    # controller's while its side did (the other side was at rest meanwhile).
    for name in ("ready", "heal", "scale"):
        a = (phases.get(f"{name}:WorkerCluster") or {}).get("requests") or {}
        b = (phases.get(f"{name}:Deployment") or {}).get("requests") or {}
        out[name].update(
            operator_reads=_count(a, "operator", "read"),
            operator_writes=_count(a, "operator", "write"),
            operator_events=_count(a, "operator", "event"),
            operator_proxy=_count(a, "operator", "proxy"),
            reference_reads=_count(b, "reference", "read"),
            reference_writes=_count(b, "reference", "write"),
            reference_events=_count(b, "reference", "event"),
        )
    total = run.get("requests_total") or {}
    out["requests_total"] = {
        "operator_read": _count(total, "operator", "read"),
        "operator_write": _count(total, "operator", "write"),
        "operator_proxy": _count(total, "operator", "proxy"),
        "operator_event": _count(total, "operator", "event"),
        "reference_event": _count(total, "reference", "event"),
        "reference_read": _count(total, "reference", "read"),
        "reference_write": _count(total, "reference", "write"),
    }
    out["cpu_s"] = {
        "operator": (run.get("cpu_seconds") or {}).get("operator"),
        "kcm": (run.get("cpu_seconds") or {}).get("kube-controller-manager"),
    }
    # CPU for the same work at every N: the three phases that move pods (both sides share each
    # phase's window, so one record per phase), and the rest per second of steady window (it
    # is 60 s at small N, 300 s at the largest: the whole run's CPU is not the same work).
    work = [
        (phases.get(f"{name}:WorkerCluster") or {}).get("cpu_whole_phase")
        for name in ("ready", "heal", "scale")
    ]
    out["cpu_work_s"] = {
        who: round(sum((w or {}).get(key) or 0 for w in work), 2) if all(work) else None
        for who, key in (("operator", "operator"), ("kcm", "kube-controller-manager"))
    }
    rest = steady.get("cpu") or {}
    out["cpu_rest_per_s"] = {
        who: round(rest[key] / window, 4) if window and key in rest else None
        for who, key in (("operator", "operator"), ("kcm", "kube-controller-manager"))
    }
    out["peak_rss_mib"] = {
        "operator": (run.get("peak_rss_mib") or {}).get("operator"),
        "kcm": (run.get("peak_rss_mib") or {}).get("kube-controller-manager"),
    }
    out["reconcile"] = run.get("reconcile")
    out["workqueue_peak_depth"] = run.get("workqueue_peak_depth")
    errors = run.get("errors") or {}
    out["errors"] = int(errors.get("operator_log", 0)) + int(errors.get("reconcile_errors") or 0)
    out["lost"] = len(run.get("lost_clusters") or [])
    dups = run.get("duplicates") or {}
    out["duplicates"] = {k: v.get("worst_excess", 0) for k, v in dups.items()}
    out["wall_s"] = run.get("wall_s")
    if "error" in run:
        out["run_error"] = run["error"]
    return out


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("holds" if ok else "misses")


def goals(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not summary:
        return []
    top = summary[-1]
    n = top["clusters"]
    out = []
    for name, label in (
        ("ready", "time to all Ready"),
        ("heal", "heal 10% of pods"),
        ("scale", "scale 5 -> 2"),
    ):
        r = top[name]["ratio"]
        out.append(
            {
                "goal": f"{label}: operator / Deployment <= {RATIO_GOAL} (N={n})",
                "figure": f"{top[name]['operator_s']} s / {top[name]['deployment_s']} s = {r}",
                "verdict": _verdict(None if r is None else r <= RATIO_GOAL),
            }
        )
    s = top["steady"]
    ok = None
    if s["operator_rps"] is not None and s["reference_rps"] is not None:
        ok = s["operator_rps"] <= STEADY_GOAL * s["reference_rps"] or s["operator_rps"] == 0
    out.append(
        {
            "goal": f"steady state: operator API req/s <= {STEADY_GOAL}x the Deployment "
            f"controller's (N={n}; reads + writes, the same work)",
            "figure": f"{s['operator_rps']} vs {s['reference_rps']} req/s over {s['window_s']} s (ratio {s['ratio']}); "
            f"apart: Events {s['operator_event_rps']} vs {s['reference_event_rps']} req/s, "
            f"the operator's /processes proxy reads {s['operator_proxy_rps']} req/s (no counterpart)",
            "verdict": _verdict(ok),
        }
    )
    out.append(
        {
            "goal": f"no writes at rest (N={n}; leader election / peering apart)",
            "figure": f"operator {s['operator_writes']} writes, reference {s['reference_writes']}; "
            f"coordination: operator {s['operator_coordination_rps']}/s, kcm {s['kcm_coordination_rps']}/s",
            "verdict": _verdict(s["operator_writes"] == 0),
        }
    )
    rss = top["peak_rss_mib"]["operator"]
    out.append(
        {
            "goal": f"operator peak RSS <= {RSS_GOAL_MIB:.0f} MiB (N={n}, {top['pods']} pods)",
            "figure": f"{rss} MiB (kube-controller-manager {top['peak_rss_mib']['kcm']} MiB)",
            "verdict": _verdict(None if rss is None else rss <= RSS_GOAL_MIB),
        }
    )
    if len(summary) >= 2:
        prev = summary[-2]
        out.append(linear_cpu(prev, top))
    errors = sum(s["errors"] for s in summary)
    lost = sum(s["lost"] for s in summary)
    dups = sum(sum(s["duplicates"].values()) for s in summary)
    out.append(
        {
            "goal": "zero errors, zero lost WorkerClusters, zero duplicate pods (every N)",
            "figure": f"errors {errors}, lost {lost}, duplicates {dups}",
            "verdict": _verdict(errors == 0 and lost == 0 and dups == 0),
            "correctness": True,
        }
    )
    return out


def linear_cpu(prev: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """CPU per WorkerCluster for the same work, at the two largest N: the pod-moving phases
    (apply, heal, scale) and a second at rest. Linear means neither grows by more than
    LINEAR_SLACK; kube-controller-manager's growth is shown beside it as the reference."""

    def per_cluster(s: dict[str, Any], field: str, who: str) -> float | None:
        value = (s.get(field) or {}).get(who)
        return None if value is None else value / s["clusters"]

    parts, ok = [], True
    for field, label in (("cpu_work_s", "apply+heal+scale s"), ("cpu_rest_per_s", "at rest s/s")):
        a, b = per_cluster(prev, field, "operator"), per_cluster(top, field, "operator")
        ka, kb = per_cluster(prev, field, "kcm"), per_cluster(top, field, "kcm")
        if a is None or b is None or a == 0:
            return {
                "goal": "operator CPU grows no worse than linearly in N",
                "figure": f"no {label} figure",
                "verdict": "n/a",
            }
        ok = ok and b <= LINEAR_SLACK * a
        kcm = f"; kube-controller-manager x{kb / ka:.2f}" if ka and kb is not None else ""
        parts.append(
            f"{label} per WorkerCluster {a:.4g} at N={prev['clusters']}, {b:.4g} at "
            f"N={top['clusters']} (x{b / a:.2f}{kcm})"
        )
    return {
        "goal": f"operator CPU grows no worse than linearly in N (per WorkerCluster, the same "
        f"work: x{LINEAR_SLACK} at most)",
        "figure": "; ".join(parts),
        "verdict": _verdict(ok),
    }


def markdown(document: dict[str, Any]) -> str:
    m = document["machine"]
    lines = [
        "# Scale: the operator against the Deployment controller (kwok, real control plane)",
        "",
        f"{m['date']}, {m['nproc']} CPUs, {m['memory_gib']} GiB, load at start {m['loadavg_at_start']}; "
        f"total {document['total_wall_s']} s. Method: [docs/scale.md](../../docs/scale.md).",
        "",
        "| N | pods | Ready op / dep (s) | heal op / dep (s) | scale op / dep (s) | steady req/s op / ref | proxy req/s | op CPU s | op peak RSS MiB | KCM CPU s | reconcile p50 / p99 s | queue peak | errors / lost / dup |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in document["summary"]:
        rec = s.get("reconcile") or {}
        lines.append(
            f"| {s['clusters']} | {s['pods']} "
            f"| {s['ready']['operator_s']} / {s['ready']['deployment_s']} ({s['ready']['ratio']}) "
            f"| {s['heal']['operator_s']} / {s['heal']['deployment_s']} ({s['heal']['ratio']}) "
            f"| {s['scale']['operator_s']} / {s['scale']['deployment_s']} ({s['scale']['ratio']}) "
            f"| {s['steady']['operator_rps']} / {s['steady']['reference_rps']} "
            f"| {s['steady']['operator_proxy_rps']} "
            f"| {s['cpu_s']['operator']} | {s['peak_rss_mib']['operator']} | {s['cpu_s']['kcm']} "
            f"| {rec.get('p50_s')} / {rec.get('p99_s')} | {s['workqueue_peak_depth']} "
            f"| {s['errors']} / {s['lost']} / {sum(s['duplicates'].values())} |"
        )
    lines += [
        "",
        "Requests for the same work (audit log; op = the operator, ref = kube-controller-manager's "
        "Deployment + ReplicaSet controllers and their shared informers), reads / writes / Events:",
        "",
        "| N | apply op | apply ref | heal op | heal ref | scale op | scale ref | whole run op | whole run ref |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in document["summary"]:
        t = s["requests_total"]
        cells = []
        for name in ("ready", "heal", "scale"):
            p = s[name]
            cells.append(
                f"{p.get('operator_reads')} / {p.get('operator_writes')} / {p.get('operator_events')}"
            )
            cells.append(
                f"{p.get('reference_reads')} / {p.get('reference_writes')} / {p.get('reference_events')}"
            )
        cells.append(
            f"{t['operator_read']} / {t['operator_write']} / {t['operator_event']} (+{t['operator_proxy']} proxy)"
        )
        cells.append(f"{t['reference_read']} / {t['reference_write']} / {t['reference_event']}")
        lines.append(f"| {s['clusters']} | " + " | ".join(cells) + " |")
    lines += ["", "## Goals", "", "| goal | figure | verdict |", "|---|---|---|"]
    for g in document["goals"]:
        lines.append(f"| {g['goal']} | {g['figure']} | **{g['verdict']}** |")
    lines.append("")
    lines.append(f"![cost against N]({document.get('name', 'scale')}.png)")
    return "\n".join(lines) + "\n"
