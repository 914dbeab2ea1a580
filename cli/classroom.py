"""`workerlab class`: one cluster, a whole class. Each learner gets a namespace `learner-NAME`
with a ResourceQuota and LimitRange (no learner starves the nodes), a ServiceAccount whose Role
grants exactly what the namespaced labs use, and a kubeconfig holding a time-bounded token
(TokenRequest, `kubectl create token --duration`). A passed check records itself in the
learner's namespace (ConfigMap `workerlab-progress`); the instructor sees a learner x lab grid
and can re-run any learner's check with their own rights.

The first half is pure (names, manifests, kubeconfig, progress records, the grid) and
unit-tested; the second half does the I/O through `workerlab.cli.kube` (kubectl), validating
everything before it acts and rolling back what it created when a step fails midway.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workerlab.api.resource import (
    CLASS_CONTEXT_PREFIX,
    GROUP,
    LABEL_LEARNER,
    LABEL_NAME,
    LEARNER_NAMESPACE_PREFIX,
    LEARNER_OBJECTS,
    PLURAL,
    PROGRESS_CONFIGMAP,
)
from workerlab.cli.errors import KubeError, WorkerlabError
from workerlab.cli.kube import Kube

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_NAME = 63 - len(LEARNER_NAMESPACE_PREFIX)
DEFAULT_OUT = Path("class")
DEFAULT_DURATION = "12h"
DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+s)?$")
MIN_DURATION_S = 600  # the API server refuses shorter TokenRequests
CLUSTER_NAME = "workerlab-class"
MAX_RECORDED_RUNS = 20

# Sized for the namespaced labs: lab 5's 3 pods x 3 processes and lab 7's rollout surge fit;
# a runaway `kubectl scale --replicas=50` does not. Node ports are one cluster-wide range, so
# learners get none (their `demo` is ClusterIP, reached through the API server's proxy).
QUOTA_HARD: dict[str, str] = {
    "pods": "8",
    "requests.cpu": "1",
    "requests.memory": "2Gi",
    "limits.cpu": "4",
    "limits.memory": "4Gi",
    "services": "4",
    "services.nodeports": "0",
    "services.loadbalancers": "0",
    "persistentvolumeclaims": "0",
    "configmaps": "6",
    "secrets": "4",
    f"count/{PLURAL}.{GROUP}": "4",
}
# Containers that state no resources get these; no single container may take half the quota.
LIMIT_RANGE: dict[str, Any] = {
    "type": "Container",
    "default": {"cpu": "500m", "memory": "256Mi"},
    "defaultRequest": {"cpu": "50m", "memory": "64Mi"},
    "max": {"cpu": "2", "memory": "2Gi"},
}

# Exactly what the namespaced labs (4, 5, 7, 9's cluster part) and `workerlab status|load|chaos`
# call; nothing cluster-scoped, no Secrets, no exec, no pod creation outside the operator.
ROLE_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [GROUP],
        "resources": [PLURAL],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["get"]},
    {"apiGroups": [GROUP], "resources": [f"{PLURAL}/scale"], "verbs": ["get", "update", "patch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "delete"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    # GET /processes, POST /crash (lab mode) through the API server's pod proxy
    {"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["get", "create"]},
    {"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["services", "endpoints"], "verbs": ["get", "list", "watch"]},
    # `workerlab load wc/NAME` without a NodePort: the API server's service proxy
    {"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get", "create"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["get", "list"]},
    {
        "apiGroups": ["", "events.k8s.io"],
        "resources": ["events"],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": [""], "resources": ["resourcequotas", "limitranges"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
    # progress: only the one ConfigMap `class add` created (create cannot be limited by name)
    {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": [PROGRESS_CONFIGMAP],
        "verbs": ["update", "patch"],
    },
]


# --- names --------------------------------------------------------------------------------
def namespace_of(name: str) -> str:
    return f"{LEARNER_NAMESPACE_PREFIX}{name}"


def context_of(name: str) -> str:
    return f"{CLASS_CONTEXT_PREFIX}{name}"


def kubeconfig_path(out_dir: Path, name: str) -> Path:
    return out_dir / f"{name}.kubeconfig"


def validate_names(names: Iterable[str]) -> list[str]:
    """The names, each a DNS label short enough for `learner-NAME`; every problem in one error."""
    found = list(names)
    if not found:
        raise WorkerlabError("give at least one learner name", hint="workerlab class add ada bob")
    problems = []
    for name in found:
        if not DNS_LABEL.match(name) or len(name) > MAX_NAME:
            problems.append(
                f"{name!r} is not a valid learner name (a DNS label: lowercase letters, digits "
                f"and '-', starting and ending with a letter or digit, at most {MAX_NAME} chars)"
            )
    dupes = sorted({n for n in found if found.count(n) > 1})
    if dupes:
        problems.append(f"named more than once: {', '.join(dupes)}")
    if problems:
        raise WorkerlabError("; ".join(problems))
    return found


def duration_seconds(text: str) -> int:
    """'12h', '90m', '1h30m' -> seconds; at least 10 minutes (the API server's minimum)."""
    match = DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise WorkerlabError(f"--duration {text!r} is not a duration like 12h, 90m or 1h30m")
    units = {"h": 3600, "m": 60, "s": 1}
    total = sum(int(part[:-1]) * units[part[-1]] for part in match.groups() if part)
    if total < MIN_DURATION_S:
        raise WorkerlabError(f"--duration {text!r} is too short: at least 10m")
    return total


# --- manifests ------------------------------------------------------------------------------
def _meta(name: str, learner: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "labels": {LABEL_NAME: "workerlab", LABEL_LEARNER: learner},
    }
    if namespace:
        meta["namespace"] = namespace
    return meta


def learner_namespace(name: str) -> dict[str, Any]:
    meta = _meta(namespace_of(name), name)
    meta["labels"].update(
        {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
        }
    )
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def learner_objects(name: str) -> list[dict[str, Any]]:
    """What lives in the learner's namespace (created after the namespace itself)."""
    ns = namespace_of(name)
    return [
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": _meta(LEARNER_OBJECTS, name, ns),
            "spec": {"hard": dict(QUOTA_HARD)},
        },
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": _meta(LEARNER_OBJECTS, name, ns),
            "spec": {"limits": [LIMIT_RANGE]},
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(LEARNER_OBJECTS, name, ns),
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(LEARNER_OBJECTS, name, ns),
            "rules": ROLE_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(LEARNER_OBJECTS, name, ns),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": LEARNER_OBJECTS,
            },
            "subjects": [{"kind": "ServiceAccount", "name": LEARNER_OBJECTS, "namespace": ns}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(PROGRESS_CONFIGMAP, name, ns),
            "data": {},
        },
    ]


def render_kubeconfig(name: str, server: str, ca_data: str | None, token: str) -> str:
    """A kubeconfig with one context, `workerlab-NAME`, in the learner's namespace."""
    cluster: dict[str, Any] = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    user = f"{LEARNER_NAMESPACE_PREFIX}{name}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER_NAME, "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {
                "name": context_of(name),
                "context": {"cluster": CLUSTER_NAME, "user": user, "namespace": namespace_of(name)},
            }
        ],
        "current-context": context_of(name),
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def cluster_of(config: dict[str, Any], context: str) -> tuple[str, str | None]:
    """(server, CA data) of a context in a `kubectl config view --raw -o json` document."""
    ctx = next((c for c in config.get("contexts") or [] if c.get("name") == context), None)
    if ctx is None:
        raise WorkerlabError(f"kubectl context {context!r} not found in your kubeconfig")
    cluster_name = (ctx.get("context") or {}).get("cluster")
    entry = next((c for c in config.get("clusters") or [] if c.get("name") == cluster_name), None)
    cluster = (entry or {}).get("cluster") or {}
    if not cluster.get("server"):
        raise WorkerlabError(f"context {context!r} names no cluster with a server address")
    ca = cluster.get("certificate-authority-data")
    if not ca and cluster.get("certificate-authority"):
        with contextlib.suppress(OSError):
            import base64

            ca = base64.b64encode(Path(cluster["certificate-authority"]).read_bytes()).decode()
    return str(cluster["server"]), ca


# --- progress -------------------------------------------------------------------------------
def lab_key(number: int) -> str:
    return f"lab-{number}"


def progress_entry(items: list[Any], runs: list[dict], at: float) -> str:
    """The record of a passed check: when, what passed, and the learner's load runs it used
    (they happened on the learner's machine; `class check` re-judges the cluster with them)."""
    return json.dumps(
        {
            "passed_at": at,
            "items": [getattr(i, "name", str(i)) for i in items],
            "runs": runs[-MAX_RECORDED_RUNS:],
        },
        sort_keys=True,
    )


def progress_of(configmap: dict | None) -> dict[int, dict]:
    """lab number -> its record, from the progress ConfigMap; malformed entries are skipped."""
    found: dict[int, dict] = {}
    for key, value in ((configmap or {}).get("data") or {}).items():
        if not key.startswith("lab-") or not key[4:].isdigit():
            continue
        try:
            record = json.loads(value)
        except ValueError:
            continue
        if isinstance(record, dict):
            found[int(key[4:])] = record
    return found


@dataclass(frozen=True)
class GridLab:
    number: int
    cluster_admin: bool  # not doable with a learner's rights: shown as "-"


def grid_rows(
    progress: dict[str, dict[int, dict]], labs: list[GridLab]
) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the learner x lab grid: `ok` passed (recorded), `.` not yet, `-` the
    lab needs cluster-admin (the instructor's)."""
    header = ["learner", *(str(lab.number) for lab in labs), "passed"]
    rows = []
    for learner in sorted(progress):
        done = progress[learner]
        cells = [
            "ok" if lab.number in done else ("-" if lab.cluster_admin else ".") for lab in labs
        ]
        doable = [lab for lab in labs if not lab.cluster_admin]
        passed = sum(lab.number in done for lab in doable)
        rows.append([learner, *cells, f"{passed}/{len(doable)}"])
    return header, rows


# --- I/O: the instructor's side -------------------------------------------------------------
@dataclass
class Added:
    name: str
    kubeconfig: Path
    renewed: bool


def learners(kube: Kube) -> list[str]:
    items = kube.list("namespaces", LABEL_LEARNER, namespaced=False)
    return sorted(
        (i["metadata"].get("labels") or {}).get(LABEL_LEARNER, "")
        for i in items
        if (i["metadata"].get("labels") or {}).get(LABEL_LEARNER)
    )


def _existing(kube: Kube, names: list[str]) -> dict[str, dict | None]:
    return {name: kube.get("namespace", namespace_of(name), namespaced=False) for name in names}


def _writable_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".workerlab-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise WorkerlabError(f"cannot write kubeconfigs to {out_dir}: {error}") from None


def _apply(kube: Kube, objects: list[dict[str, Any]]) -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": objects}
    kube.run("apply", "-f", "-", namespaced=False, stdin=json.dumps(doc))


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (0600 from the start, never world-readable)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def add(
    kube: Kube, names: list[str], out_dir: Path, duration: str, server: str | None
) -> list[Added]:
    """Create (or renew) each learner; all or nothing: validate first, roll back on failure."""
    names = validate_names(names)
    seconds = duration_seconds(duration)
    existing = _existing(kube, names)
    foreign = [
        namespace_of(n)
        for n, ns in existing.items()
        if ns is not None and (ns["metadata"].get("labels") or {}).get(LABEL_LEARNER) != n
    ]
    if foreign:
        raise WorkerlabError(
            f"namespace {', '.join(foreign)} already exists and is not a workerlab learner's "
            "(no label " + LABEL_LEARNER + "): nothing was created",
            hint="choose another learner name, or remove that namespace yourself",
        )
    config = kube.json("config", "view", "--raw", namespaced=False)
    found_server, ca = cluster_of(config, kube.context)
    _writable_dir(out_dir)
    created: list[str] = []
    written: list[Path] = []
    done: list[Added] = []
    try:
        for name in names:
            if existing[name] is None:
                created.append(name)
            _apply(kube, [learner_namespace(name)])
            _apply(kube, learner_objects(name))
            token = kube.run(
                "create",
                "token",
                LEARNER_OBJECTS,
                f"--duration={seconds}s",
                "--namespace",
                namespace_of(name),
                namespaced=False,
            ).strip()
            path = kubeconfig_path(out_dir, name)
            write_private(path, render_kubeconfig(name, server or found_server, ca, token))
            written.append(path)
            done.append(Added(name, path, renewed=existing[name] is not None))
    except (WorkerlabError, OSError) as error:
        rolled = _roll_back(kube, created, written)
        raise WorkerlabError(
            f"class add failed at learner {name!r}: {error}; rolled back: {rolled}"
        ) from None
    return done


def _roll_back(kube: Kube, created: list[str], written: list[Path]) -> str:
    undone = []
    for path in written:
        with contextlib.suppress(OSError):
            path.unlink()
            undone.append(str(path))
    for name in created:
        with contextlib.suppress(WorkerlabError):
            kube.run(
                "delete", "namespace", namespace_of(name), "--ignore-not-found", namespaced=False
            )
            undone.append(f"namespace {namespace_of(name)}")
    return ", ".join(undone) or "nothing to undo"


def remove(kube: Kube, names: list[str], out_dir: Path) -> list[str]:
    """Delete each learner's namespace (everything in it, the ServiceAccount included, so its
    tokens stop working) and kubeconfig. Validates every name before deleting anything."""
    names = validate_names(names)
    existing = _existing(kube, names)
    missing = [n for n, ns in existing.items() if ns is None]
    foreign = [
        n
        for n, ns in existing.items()
        if ns is not None and (ns["metadata"].get("labels") or {}).get(LABEL_LEARNER) != n
    ]
    if missing or foreign:
        parts = []
        if missing:
            parts.append(f"not in the class (no namespace learner-NAME): {', '.join(missing)}")
        if foreign:
            parts.append(
                f"not a learner's namespace (no {LABEL_LEARNER} label): "
                + ", ".join(namespace_of(n) for n in foreign)
            )
        raise WorkerlabError(
            "; ".join(parts) + ": nothing was removed", hint="workerlab class list"
        )
    lines = []
    for name in names:
        kube.run(
            "delete",
            "namespace",
            namespace_of(name),
            "--wait=true",
            "--timeout=120s",
            namespaced=False,
            timeout=150,
        )
        lines.append(f"removed namespace {namespace_of(name)}")
        path = kubeconfig_path(out_dir, name)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            lines.append(f"removed {path}")
    return lines


def progress(kube: Kube, name: str) -> dict[int, dict]:
    learner = Kube(context=kube.context, namespace=namespace_of(name), kubectl=kube.kubectl)
    return progress_of(learner.get("configmap", PROGRESS_CONFIGMAP))


def class_progress(kube: Kube) -> dict[str, dict[int, dict]]:
    return {name: progress(kube, name) for name in learners(kube)}


def require_learner(kube: Kube, name: str) -> Kube:
    """The instructor's Kube, aimed at a learner's namespace (which must be one)."""
    validate_names([name])
    ns = kube.get("namespace", namespace_of(name), namespaced=False)
    if ns is None or (ns["metadata"].get("labels") or {}).get(LABEL_LEARNER) != name:
        raise WorkerlabError(f"{name!r} is not in the class", hint="workerlab class list")
    return Kube(context=kube.context, namespace=namespace_of(name), kubectl=kube.kubectl)


# --- I/O: the learner's side ----------------------------------------------------------------
def record_pass(kube: Kube, number: int, items: list[Any], runs: list[dict]) -> None:
    """Record a passed check in the learner's own namespace (a claim the instructor can
    re-check with `workerlab class check`)."""
    entry = progress_entry(items, runs, time.time())
    patch = {"data": {lab_key(number): entry}}
    try:
        kube.run(
            "patch", "configmap", PROGRESS_CONFIGMAP, "--type", "merge", "-p", json.dumps(patch)
        )
    except KubeError as error:
        raise WorkerlabError(
            f"the check passed, but recording it in configmap/{PROGRESS_CONFIGMAP} failed: {error}",
            hint="ask your instructor to re-run `workerlab class add` for you",
        ) from None
