"""Both levels of the master-worker pattern, read from the cluster as plain data: each
WorkerCluster (the operator's "workers" are its pods) and each pod's processes as its gunicorn
arbiter reports them on GET /processes, read through the API server's pod proxy so it works from
the host without port-forwards. `workerlab status` renders it; the labs' checkers judge it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

from workerlab.api.objects import (
    conditions_by_type,
    hpa_cpu_utilization,
    hpa_targets,
    pod_ready,
    pod_restarts,
    pod_template_hash,
    pod_terminating,
    pod_waiting_reason,
    worker_port,
)
from workerlab.api.processes import ProcessesReport
from workerlab.api.resource import (
    ANNOTATION_CHANGED_AT,
    ANNOTATION_PROCESSES,
    HPA_RESOURCE,
    OPERATOR_LEASE,
    OPERATOR_NAMESPACE,
)
from workerlab.common.errors import WorkerlabError
from workerlab.common.kube import Kube


@dataclass
class ProcessRow:
    pid: int
    index: int | None
    uptime_s: float | None
    requests_served: int | None  # the learner's requests (workerlab.api.traffic)
    alive: bool
    exit: str | None = None  # how a dead one ended (see workerlab.api.exits)
    in_flight: int | None = None
    control_served: int | None = None  # probes, polls and scrapes; None from an older worker


@dataclass
class PodRow:
    name: str
    phase: str
    ready: bool
    restarts: int
    node: str | None
    template_hash: str | None
    terminating: bool = False
    waiting_reason: str | None = None
    arbiter_pid: int | None = None
    balance: str | None = None  # how the pod's processes share connections (BALANCE)
    processes: list[ProcessRow] | None = None  # None: not asked, or the pod did not answer
    processes_error: str | None = None
    # In place (no restart): the count the operator told the pod, when it last changed the pod
    # in place, and the change it is still taking (the operator's status.pods[].inPlace).
    processes_told: int | None = None
    changed_in_place_at: str | None = None
    in_place: str | None = None

    @property
    def alive_processes(self) -> int | None:
        if self.processes is None:
            return None
        return sum(1 for p in self.processes if p.alive)


@dataclass
class AutoscalerView:
    """The HorizontalPodAutoscaler that owns a WorkerCluster's spec.replicas."""

    name: str
    min_replicas: int
    max_replicas: int | None
    cpu_current: int | None  # percent of the CPU request; None before the first reading
    cpu_target: int | None

    def describe(self) -> str:
        cpu = ""
        if self.cpu_target is not None:
            now = "?" if self.cpu_current is None else f"{self.cpu_current}%"
            cpu = f", cpu {now}/{self.cpu_target}%"
        return (
            f"replicas owned by hpa/{self.name} "
            f"(min {self.min_replicas}, max {self.max_replicas}{cpu})"
        )


@dataclass
class ClusterView:
    name: str
    namespace: str
    desired: int
    processes_per_pod: int
    ready_replicas: int
    ready_processes: int | None
    phase: str | None
    conditions: dict[str, str]  # type -> "True (Reason)"
    pods: list[PodRow] = field(default_factory=list)
    autoscaler: AutoscalerView | None = None
    # status.lostNodes: nodes silent past spec.nodeLossTolerationSeconds -> their last heartbeat
    lost_nodes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def pod_row(pod: dict) -> PodRow:
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    annotations = meta.get("annotations") or {}
    return PodRow(
        name=meta.get("name", "?"),
        phase=status.get("phase", "Unknown"),
        ready=pod_ready(pod),
        restarts=pod_restarts(pod),
        node=spec.get("nodeName"),
        template_hash=pod_template_hash(pod),
        terminating=pod_terminating(pod),
        waiting_reason=pod_waiting_reason(pod),
        processes_told=int(told)
        if (told := annotations.get(ANNOTATION_PROCESSES, "")).isdigit()
        else None,
        changed_in_place_at=annotations.get(ANNOTATION_CHANGED_AT),
    )


def process_rows(report: dict, now: float | None = None) -> list[ProcessRow]:
    now = time.time() if now is None else now
    return [
        ProcessRow(
            pid=p.pid,
            index=p.index,
            uptime_s=round(now - p.started_at, 1) if p.alive and p.started_at else None,
            requests_served=p.requests_served,
            alive=p.alive,
            exit=p.exit,
            in_flight=p.in_flight,
            control_served=p.control_served,
        )
        for p in ProcessesReport.from_dict(report).processes
    ]


def conditions_of(wc: dict) -> dict[str, str]:
    """type -> "True (Reason)", for one line of text."""
    out = {}
    for kind, c in conditions_by_type(wc).items():
        reason = f" ({c['reason']})" if c.get("reason") else ""
        out[kind] = f"{c.get('status', '?')}{reason}"
    return out


def autoscaler_view(wc_name: str, hpas: list[dict]) -> AutoscalerView | None:
    """The HPA scaling `wc_name`, if any (the oldest, should there be several: the others fight
    it, and the HPA controller reports them as AmbiguousSelector)."""
    mine = sorted(
        (h for h in hpas if hpa_targets(h, wc_name)),
        key=lambda h: str(h["metadata"].get("creationTimestamp", "")),
    )
    if not mine:
        return None
    spec = mine[0].get("spec") or {}
    current, target = hpa_cpu_utilization(mine[0])
    return AutoscalerView(
        name=mine[0]["metadata"]["name"],
        min_replicas=int(spec.get("minReplicas", 1)),  # the API's default
        max_replicas=spec.get("maxReplicas"),
        cpu_current=current,
        cpu_target=target,
    )


def list_hpas(kube: Kube) -> list[dict]:
    """The namespace's HPAs; none where the API is absent or we may not list them (a learner's
    namespaced rights): the view then simply says nothing about autoscaling."""
    try:
        return kube.list(HPA_RESOURCE)
    except WorkerlabError:
        return []


def cluster_view(wc: dict, pods: list[dict]) -> ClusterView:
    spec, status = wc.get("spec") or {}, wc.get("status") or {}
    in_place = {
        str(p.get("name")): str(p["inPlace"]) for p in status.get("pods") or [] if p.get("inPlace")
    }
    return ClusterView(
        name=wc["metadata"]["name"],
        namespace=wc["metadata"].get("namespace", ""),
        desired=int(spec.get("replicas", 0)),
        processes_per_pod=int(spec.get("processesPerPod", 0)),
        ready_replicas=int(status.get("readyReplicas") or 0),
        ready_processes=status.get("readyProcesses"),
        phase=status.get("phase"),
        conditions=conditions_of(wc),
        pods=[replace(pod_row(p), in_place=in_place.get(p["metadata"]["name"])) for p in pods],
        lost_nodes={
            str(n.get("name")): str(n.get("lastHeartbeatTime", "?"))
            for n in status.get("lostNodes") or []
        },
    )


def attach_processes(kube: Kube, view: ClusterView, port: int) -> None:
    for row in view.pods:
        if row.phase != "Running" or row.terminating:
            continue
        try:
            report = kube.proxy_get(row.name, port, "/processes", timeout=5)
        except WorkerlabError as error:
            row.processes_error = str(error)
            continue
        parsed = ProcessesReport.from_dict(report)
        row.arbiter_pid = parsed.arbiter_pid
        row.balance = parsed.balance
        row.processes = process_rows(report)


def gather(kube: Kube, name: str | None = None, processes: bool = True) -> list[ClusterView]:
    wcs = [kube.worker_cluster(name)] if name else kube.worker_clusters()
    hpas = list_hpas(kube) if wcs else []
    views = []
    for wc in wcs:
        view = cluster_view(wc, kube.pods_of(wc["metadata"]["name"]))
        view.autoscaler = autoscaler_view(view.name, hpas)
        if processes:
            attach_processes(kube, view, worker_port(wc))
        views.append(view)
    return views


def active_master(kube: Kube) -> str | None:
    """The pod holding the operator's Lease (`--leader-elect`), or None: no Lease (a single
    operator, kopf's peering), or not readable with these rights (a learner's)."""
    operators = Kube(context=kube.context, namespace=OPERATOR_NAMESPACE, kubectl=kube.kubectl)
    try:
        lease = operators.get("lease", OPERATOR_LEASE)
    except WorkerlabError:
        return None
    holder = ((lease or {}).get("spec") or {}).get("holderIdentity")
    return str(holder) if holder else None
