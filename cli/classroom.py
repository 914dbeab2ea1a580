"""`workerlab class`: one cluster, a whole class. Each learner gets a namespace `learner-NAME`
with a ResourceQuota and LimitRange (no learner starves the nodes), a ServiceAccount whose Role
grants exactly what the namespaced labs use, and a kubeconfig holding a time-bounded token
(TokenRequest, `kubectl create token --duration`). A passed check records itself in the
learner's namespace (ConfigMap `workerlab-progress`); the instructor sees a learner x lab grid
and can re-run any learner's check with their own rights.

This module is the I/O through `workerlab.common.kube` (kubectl), validating everything before it
acts and rolling back what it created when a step fails midway. The pure parts live beside it:

- `class_names`: learner names, their namespace/context/file, token durations;
- `class_settings`: the quota and limit range (built-in defaults, the cluster's, flags, files);
- `class_manifests`: the objects a learner gets;
- `class_kubeconfig`: the learner's kubeconfig;
- `class_progress`: recorded passes and the learner x lab grid;
- `class_fit`: whether the class's quotas fit on the nodes.

Their public names are re-exported here, so `classroom.X` keeps working.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workerlab.api.resource import (
    LABEL_LEARNER,
    LEARNER_OBJECTS,
    PROGRESS_CONFIGMAP,
    VERIFIED_CONFIGMAP,
)
from workerlab.cli.class_fit import Shortfall, allocatable, requested, shortfalls
from workerlab.cli.class_kubeconfig import (
    CLUSTER_NAME,
    cluster_of,
    render_kubeconfig,
    write_private,
)
from workerlab.cli.class_manifests import (
    ROLE_RULES,
    learner_namespace,
    learner_objects,
    verified_configmap,
)
from workerlab.cli.class_names import (
    DEFAULT_DURATION,
    DEFAULT_OUT,
    DNS_LABEL,
    DURATION,
    MAX_NAME,
    MIN_DURATION_S,
    context_of,
    duration_seconds,
    kubeconfig_path,
    namespace_of,
    validate_names,
)
from workerlab.cli.class_progress import (
    LEGEND,
    MAX_RECORDED_RUNS,
    GridLab,
    Standing,
    grid_rows,
    lab_key,
    progress_entry,
    progress_of,
    verified_entry,
)
from workerlab.cli.class_settings import LIMIT_RANGE, QUOTA_HARD, ClassSettings, resolve
from workerlab.common.errors import KubeError, WorkerlabError
from workerlab.common.kube import Kube

__all__ = [
    "CLUSTER_NAME",
    "DEFAULT_DURATION",
    "DEFAULT_OUT",
    "DNS_LABEL",
    "DURATION",
    "LEGEND",
    "LIMIT_RANGE",
    "MAX_NAME",
    "MAX_RECORDED_RUNS",
    "MIN_DURATION_S",
    "QUOTA_HARD",
    "ROLE_RULES",
    "Added",
    "ClassSettings",
    "GridLab",
    "Shortfall",
    "Standing",
    "add",
    "class_progress",
    "cluster_of",
    "context_of",
    "duration_seconds",
    "fit",
    "grid_rows",
    "kubeconfig_path",
    "lab_key",
    "learner_namespace",
    "learner_objects",
    "learners",
    "namespace_of",
    "progress",
    "progress_entry",
    "progress_of",
    "record_pass",
    "record_verified",
    "remove",
    "render_kubeconfig",
    "require_learner",
    "standing",
    "validate_names",
    "write_private",
]


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


def fit(kube: Kube, names: list[str], settings: ClassSettings) -> list[Shortfall]:
    """What the class (its learners so far and `names`) could not get at once if every learner
    used their whole quota: the nodes' allocatable less what the other pods request."""
    everyone = set(learners(kube)) | set(names)
    nodes = kube.list("nodes", namespaced=False)
    pods = kube.json("get", "pods", "--all-namespaces", namespaced=False).get("items", [])
    others = requested(pods, {namespace_of(name) for name in everyone})
    return shortfalls(settings.quota, len(everyone), allocatable(nodes), others)


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


def add(
    kube: Kube,
    names: list[str],
    out_dir: Path,
    duration: str,
    server: str | None,
    settings: ClassSettings | None = None,
) -> list[Added]:
    """Create (or renew) each learner; all or nothing: validate first, roll back on failure.

    Every object is applied (`kubectl apply`), so adding an existing learner again also brings
    their quota and limit range to `settings` (default: `class_settings.resolve(kube)`, the
    built-in defaults under the cluster's)."""
    names = validate_names(names)
    seconds = duration_seconds(duration)
    if settings is None:
        settings = resolve(kube)
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
            _apply(kube, learner_objects(name, settings))
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


def _in_namespace_of(kube: Kube, name: str) -> Kube:
    return Kube(context=kube.context, namespace=namespace_of(name), kubectl=kube.kubectl)


def progress(kube: Kube, name: str) -> dict[int, dict]:
    """The learner's recorded passes (their claims)."""
    return progress_of(_in_namespace_of(kube, name).get("configmap", PROGRESS_CONFIGMAP))


def standing(kube: Kube, name: str) -> Standing:
    learner = _in_namespace_of(kube, name)
    return Standing(
        claimed=progress_of(learner.get("configmap", PROGRESS_CONFIGMAP)),
        verified=progress_of(learner.get("configmap", VERIFIED_CONFIGMAP)),
    )


def class_progress(kube: Kube) -> dict[str, Standing]:
    return {name: standing(kube, name) for name in learners(kube)}


def record_verified(kube: Kube, name: str, number: int, record: dict) -> None:
    """Note, with the instructor's rights, that a re-run of the learner's recorded pass passed."""
    learner = _in_namespace_of(kube, name)
    data = {lab_key(number): verified_entry(record, time.time())}
    if learner.get("configmap", VERIFIED_CONFIGMAP) is None:
        learner.run("create", "-f", "-", stdin=json.dumps(verified_configmap(name, data)))
    else:
        patch = json.dumps({"data": data})
        learner.run("patch", "configmap", VERIFIED_CONFIGMAP, "--type", "merge", "-p", patch)


def require_learner(kube: Kube, name: str) -> Kube:
    """The instructor's Kube, aimed at a learner's namespace (which must be one)."""
    validate_names([name])
    ns = kube.get("namespace", namespace_of(name), namespaced=False)
    if ns is None or (ns["metadata"].get("labels") or {}).get(LABEL_LEARNER) != name:
        raise WorkerlabError(f"{name!r} is not in the class", hint="workerlab class list")
    return Kube(context=kube.context, namespace=namespace_of(name), kubectl=kube.kubectl)


# --- I/O: the learner's side ----------------------------------------------------------------
def record_pass(
    kube: Kube, number: int, items: list[Any], runs: list[dict], started_at: float | None
) -> None:
    """Record a passed check in the learner's own namespace (a claim the instructor can
    re-check with `workerlab class check`, from the same start)."""
    entry = progress_entry(items, runs, time.time(), started_at)
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
