"""The WorkerCluster resource and observed pods as plain, immutable Python values.

Everything here is pure: parsing dicts that came from the API server into dataclasses, with the
same defaults the CRD schema applies (so the core behaves the same whether or not the API server
already defaulted a field, e.g. in unit tests or for objects stored before a default was added).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workerlab.api.objects import (
    controller_uid,
    format_time,
    parse_time,
    pod_ready,
    pod_restarts,
    pod_template_hash,
    pod_terminating,
    pod_waiting_reason,
)
from workerlab.api.resource import API_VERSION, APP_NAME, KIND, LABEL_INSTANCE, LABEL_NAME
from workerlab.operator.images import FALLBACK_WORKER_IMAGE, WorkerImage, resolve
from workerlab.operator.podfacts import in_place_facts

# How each pod's processes share connections (the worker's BALANCE; docs/worker.md).
BALANCE_MODES = ("shared", "reuseport")
DEFAULT_BALANCE = "shared"
# Env names the operator sets itself; spec.env may not override them (the CRD rejects it too).
RESERVED_ENV = (
    "WORKER_PROCESSES",
    "WORKER_PROCESSES_FILE",
    "PORT",
    "BALANCE",
    "WORKERLAB_LAB_MODE",
    "WORKERLAB_STATE_DIR",
    "GRACEFUL_TIMEOUT",
    "POD_NAME",
    "POD_NAMESPACE",
)


def resolve_int_or_percent(value: int | str, total: int, *, round_up: bool) -> int:
    """Deployment semantics: surge rounds up, unavailability rounds down."""
    if isinstance(value, int):
        return max(0, value)
    text = str(value).strip()
    if text.endswith("%"):
        fraction = int(text[:-1]) * total / 100
        return max(0, math.ceil(fraction) if round_up else math.floor(fraction))
    return max(0, int(text))


@dataclass(frozen=True)
class ServiceSpec:
    type: str = "ClusterIP"
    port: int = 80
    node_port: int | None = None


@dataclass(frozen=True)
class IngressSpec:
    enabled: bool = False
    host: str | None = None
    class_name: str | None = None
    path: str = "/"


@dataclass(frozen=True)
class NetworkPolicySpec:
    enabled: bool = False
    allowed_namespaces: tuple[str, ...] = ()
    allowed_cidrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class UpdateStrategy:
    max_surge: int | str = "25%"
    max_unavailable: int | str = 0

    def bounds(self, desired: int) -> tuple[int, int]:
        """(surge, unavailable) in pods. Never both zero: a rollout could not move at all.

        Deployment picks unavailable=1 in that case; we pick surge=1 so capacity never drops.
        """
        surge = resolve_int_or_percent(self.max_surge, desired, round_up=True)
        unavailable = resolve_int_or_percent(self.max_unavailable, desired, round_up=False)
        if surge == 0 and unavailable == 0:
            surge = 1
        return surge, unavailable


@dataclass(frozen=True)
class PodTemplateExtras:
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    affinity: dict[str, Any] | None = None
    # None: not in the spec, so the operator's default spread applies; [] turns it off.
    topology_spread_constraints: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class WorkerClusterSpec:
    replicas: int = 2
    processes_per_pod: int = 2
    image: str | None = None  # None: the operator's default worker image
    image_pull_policy: str | None = None  # None: that image's default policy (images.resolve)
    port: int = 8000
    balance: str = DEFAULT_BALANCE
    resources: dict[str, Any] = field(default_factory=dict)
    env: list[dict[str, Any]] = field(default_factory=list)
    lab_mode: bool = False
    graceful_timeout_seconds: int = 20
    pre_stop_sleep_seconds: int = 5
    # How long a node may stay silent before its pods are replaced elsewhere (nodeloss.py).
    node_loss_toleration_seconds: int = 30
    service: ServiceSpec = field(default_factory=ServiceSpec)
    ingress: IngressSpec = field(default_factory=IngressSpec)
    network_policy: NetworkPolicySpec = field(default_factory=NetworkPolicySpec)
    update_strategy: UpdateStrategy = field(default_factory=UpdateStrategy)
    pod_template: PodTemplateExtras = field(default_factory=PodTemplateExtras)
    paused: bool = False

    @classmethod
    def from_dict(cls, spec: dict[str, Any] | None) -> WorkerClusterSpec:
        spec = spec or {}
        service = spec.get("service") or {}
        ingress = spec.get("ingress") or {}
        policy = spec.get("networkPolicy") or {}
        strategy = spec.get("updateStrategy") or {}
        extras = spec.get("podTemplate") or {}
        return cls(
            replicas=int(spec.get("replicas", 2)),
            processes_per_pod=int(spec.get("processesPerPod", 2)),
            image=spec.get("image") or None,
            image_pull_policy=spec.get("imagePullPolicy") or None,
            port=int(spec.get("port", 8000)),
            balance=spec.get("balance") or DEFAULT_BALANCE,
            resources=dict(spec.get("resources") or {}),
            env=[dict(e) for e in spec.get("env") or []],
            lab_mode=bool(spec.get("labMode", False)),
            graceful_timeout_seconds=int(spec.get("gracefulTimeoutSeconds", 20)),
            pre_stop_sleep_seconds=int(spec.get("preStopSleepSeconds", 5)),
            node_loss_toleration_seconds=int(spec.get("nodeLossTolerationSeconds", 30)),
            service=ServiceSpec(
                type=service.get("type", "ClusterIP"),
                port=int(service.get("port", 80)),
                node_port=service.get("nodePort"),
            ),
            ingress=IngressSpec(
                enabled=bool(ingress.get("enabled", False)),
                host=ingress.get("host"),
                class_name=ingress.get("className"),
                path=ingress.get("path", "/"),
            ),
            network_policy=NetworkPolicySpec(
                enabled=bool(policy.get("enabled", False)),
                allowed_namespaces=tuple(policy.get("allowedNamespaces") or ()),
                allowed_cidrs=tuple(policy.get("allowedCIDRs") or ()),
            ),
            update_strategy=UpdateStrategy(
                max_surge=strategy.get("maxSurge", "25%"),
                max_unavailable=strategy.get("maxUnavailable", 0),
            ),
            pod_template=PodTemplateExtras(
                labels=dict(extras.get("labels") or {}),
                annotations=dict(extras.get("annotations") or {}),
                node_selector=dict(extras.get("nodeSelector") or {}),
                tolerations=list(extras.get("tolerations") or []),
                affinity=extras.get("affinity"),
                topology_spread_constraints=(
                    list(extras["topologySpreadConstraints"] or [])
                    if "topologySpreadConstraints" in extras
                    else None
                ),
            ),
            paused=bool(spec.get("paused", False)),
        )


@dataclass(frozen=True)
class FailureBackoff:
    """How many times in a row failed pods were replaced, persisted in status.

    Kept in status (not in memory) so that an operator restart does not reset the backoff and
    turn a crash loop into a tight delete/recreate loop.
    """

    consecutive_failures: int = 0
    last_replacement: datetime | None = None

    @classmethod
    def from_status(cls, status: dict[str, Any]) -> FailureBackoff:
        raw = status.get("failureBackoff") or {}
        return cls(
            consecutive_failures=int(raw.get("consecutiveFailures", 0)),
            last_replacement=parse_time(raw.get("lastReplacementTime")),
        )

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"consecutiveFailures": self.consecutive_failures}
        if self.last_replacement is not None:
            out["lastReplacementTime"] = format_time(self.last_replacement)
        return out


@dataclass(frozen=True)
class WorkerCluster:
    """What the core needs to know about one WorkerCluster object, and the operator's default
    worker image it falls back to (a setting, so it travels with the object as data)."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: WorkerClusterSpec
    status: dict[str, Any] = field(default_factory=dict)
    default_image: WorkerImage = FALLBACK_WORKER_IMAGE

    @classmethod
    def from_body(
        cls, body: dict[str, Any], default_image: WorkerImage = FALLBACK_WORKER_IMAGE
    ) -> WorkerCluster:
        meta = body.get("metadata") or {}
        return cls(
            name=meta["name"],
            namespace=meta.get("namespace", "default"),
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation", 1)),
            spec=WorkerClusterSpec.from_dict(body.get("spec")),
            status=dict(body.get("status") or {}),
            default_image=default_image,
        )

    @property
    def image(self) -> WorkerImage:
        """The image its pods run (status.image), resolved against the operator's default."""
        return resolve(self.spec.image, self.spec.image_pull_policy, self.default_image)

    @property
    def selector(self) -> dict[str, str]:
        return {LABEL_NAME: APP_NAME, LABEL_INSTANCE: self.name}

    @property
    def selector_string(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.selector.items()))

    def owner_reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


# Container waiting reasons that mean "this pod will not become Ready on its own soon".
STUCK_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


@dataclass(frozen=True)
class ObservedPod:
    """The facts about one pod the core decides on."""

    name: str
    uid: str = ""
    node: str | None = None  # spec.nodeName, None while unscheduled
    template_hash: str | None = None
    controller_uid: str | None = None
    created: datetime | None = None
    terminating: bool = False
    phase: str = "Pending"
    ready: bool = False
    restarts: int = 0
    waiting_reason: str | None = None
    last_exit_code: int | None = None
    last_exit_message: str | None = None
    status_reason: str | None = None  # pod-level, e.g. "Evicted"
    processes_alive: int | None = None  # from GET /processes, None when unknown
    # In place (inplace.py): what the operator told the pod, and what its kubelet applied.
    processes_told: int | None = None  # the annotation its arbiter follows
    image: str | None = None  # the worker container's
    resources: dict[str, Any] = field(default_factory=dict)  # the container's spec
    resources_applied: dict[str, Any] | None = None  # containerStatuses[].resources, if told
    resize: str | None = None  # Infeasible | Deferred (PodResizePending) | InProgress
    resize_message: str | None = None
    changed_at: datetime | None = None
    in_place_refused: str | None = None

    @property
    def finished(self) -> bool:
        return self.phase in ("Failed", "Succeeded")

    @property
    def stuck(self) -> bool:
        return self.waiting_reason in STUCK_REASONS

    @property
    def crash_looping(self) -> bool:
        """Stuck, or restarted and not Ready again yet.

        Between two crashes the container runs (unready) for a moment and its waiting reason is
        gone; without the second clause Degraded would flap to False at every restart.
        """
        return self.stuck or (self.restarts > 0 and not self.ready and self.phase == "Running")

    def owned_by(self, cluster: WorkerCluster) -> bool:
        return self.controller_uid is not None and self.controller_uid == cluster.uid

    @classmethod
    def from_pod(cls, pod: dict[str, Any], processes_alive: int | None = None) -> ObservedPod:
        meta = pod.get("metadata") or {}
        status = pod.get("status") or {}
        last_code = last_message = None
        for cs in status.get("containerStatuses") or []:
            terminated = (cs.get("lastState") or {}).get("terminated") or (
                (cs.get("state") or {}).get("terminated") or {}
            )
            if terminated:
                last_code = terminated.get("exitCode")
                last_message = (terminated.get("message") or terminated.get("reason") or "").strip()
                break
        return cls(
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            node=(pod.get("spec") or {}).get("nodeName") or None,
            template_hash=pod_template_hash(pod),
            controller_uid=controller_uid(pod),
            created=parse_time(meta.get("creationTimestamp")),
            terminating=pod_terminating(pod),
            phase=status.get("phase", "Pending"),
            ready=pod_ready(pod),
            restarts=pod_restarts(pod),
            waiting_reason=pod_waiting_reason(pod),
            last_exit_code=last_code,
            last_exit_message=last_message or None,
            status_reason=status.get("reason"),
            processes_alive=processes_alive,
            **in_place_facts(pod),
        )
