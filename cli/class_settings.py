"""`workerlab class`: the ResourceQuota and LimitRange each learner's namespace gets.

Layers, lowest first, each merged over the ones before it key by key:

1. the built-in defaults below (`QUOTA_HARD`, `LIMIT_RANGE`);
2. the cluster's class defaults: data key `profile.yaml` of the ConfigMap
   `workerlab-system/workerlab-class-defaults` (the Helm chart's `class.quota` and
   `class.limitRange` values), when it exists;
3. `--profile FILE`, the same format;
4. `--quota KEY=QTY,...` and `--limit-range SECTION.RESOURCE=QTY,...`.

A profile (file or ConfigMap) is YAML::

    quota:          # ResourceQuota spec.hard
      pods: "12"
      requests.cpu: "2"
    limitRange:     # the LimitRange's Container item: default, defaultRequest, max, min
      default: {cpu: 500m, memory: 256Mi}
      max: {cpu: "2"}

Every layer is checked on its own (names and quantities) and the merged result as a whole (the
LimitRange's min <= defaultRequest <= default <= max), all before anything is created. Pure,
except `cluster_layer`, which reads the ConfigMap through `workerlab.common.kube`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from workerlab.api.resource import (
    CLASS_DEFAULTS_CONFIGMAP,
    CLASS_DEFAULTS_KEY,
    GROUP,
    OPERATOR_NAMESPACE,
    PLURAL,
)
from workerlab.cli.class_quantities import (
    LIMIT_RESOURCES,
    LIMIT_SECTIONS,
    did_you_mean,
    is_counted,
    limit_key_problem,
    parse_quantity,
    quantity_problem,
    quota_key_problem,
)
from workerlab.common.errors import KubeError, WorkerlabError
from workerlab.common.kube import Kube

# --- the built-in defaults --------------------------------------------------------------------
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
# The LimitRange's Container item, by section: containers that state no resources get the
# default(Request)s; no single container may take half the quota.
LIMIT_RANGE: dict[str, dict[str, str]] = {
    "default": {"cpu": "500m", "memory": "256Mi"},
    "defaultRequest": {"cpu": "50m", "memory": "64Mi"},
    "max": {"cpu": "2", "memory": "2Gi"},
}

BUILT_IN = "built-in defaults"
PROFILE_KEY = CLASS_DEFAULTS_KEY
PROFILE_KEYS = ("quota", "limitRange")
CLUSTER_DEFAULTS = f"{OPERATOR_NAMESPACE}/{CLASS_DEFAULTS_CONFIGMAP}"


# --- layers ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layer:
    """One source of settings (checked on its own): what it sets, and where it came from."""

    source: str
    quota: dict[str, str] = field(default_factory=dict)
    limit_range: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.quota and not any(self.limit_range.values())


def built_in_layer() -> Layer:
    return Layer(
        BUILT_IN, dict(QUOTA_HARD), {section: dict(v) for section, v in LIMIT_RANGE.items()}
    )


def _split(values: Iterable[str]) -> list[str]:
    """Items of a repeatable, comma-separated option: '--quota a=1,b=2 --quota c=3'."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _pair(option: str, item: str, example: str) -> tuple[str, str] | str:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        return f"{option} {item}: expected KEY=VALUE, like {example}"
    return key.strip(), value.strip()


def _checked_pairs(
    option: str, values: Iterable[str], example: str, check: Callable[[str, str], str | None]
) -> tuple[list[str], list[tuple[str, str]]]:
    """(the option's items as typed, their KEY=VALUE pairs); one error naming every item that
    is no pair or that `check` refuses."""
    items = _split(values)
    pairs, problems = [], []
    for item in items:
        pair = _pair(option, item, example)
        if isinstance(pair, str):
            problems.append(pair)
        elif problem := check(*pair):
            problems.append(f"{option} {item}: {problem}")
        else:
            pairs.append(pair)
    _raise(problems)
    return items, pairs


def _quota_pair_problem(key: str, value: str) -> str | None:
    return quota_key_problem(key) or quantity_problem(value, is_counted(key))


def _limit_pair_problem(key: str, value: str) -> str | None:
    section, dot, resource = key.partition(".")
    if not dot:
        return (
            f"{key!r} is not SECTION.RESOURCE, like default.cpu or max.memory "
            f"(sections: {', '.join(LIMIT_SECTIONS)})"
        )
    return limit_key_problem(section, resource) or quantity_problem(value)


def quota_layer(values: Iterable[str]) -> Layer | None:
    """`--quota pods=12,requests.cpu=2` (repeatable); None when not given."""
    items, pairs = _checked_pairs("--quota", values, "pods=12", _quota_pair_problem)
    return Layer(f"--quota {','.join(items)}", quota=dict(pairs)) if items else None


def limit_range_layer(values: Iterable[str]) -> Layer | None:
    """`--limit-range default.cpu=500m,max.memory=2Gi` (repeatable); None when not given."""
    items, pairs = _checked_pairs("--limit-range", values, "max.cpu=2", _limit_pair_problem)
    if not items:
        return None
    limits: dict[str, dict[str, str]] = {}
    for key, value in pairs:
        section, _, resource = key.partition(".")
        limits.setdefault(section, {})[resource] = value
    return Layer(f"--limit-range {','.join(items)}", limit_range=limits)


def _raise(problems: list[str], hint: str | None = None) -> None:
    if problems:
        raise WorkerlabError("; ".join(problems), hint=hint)


# --- profiles (a file, or the cluster's ConfigMap) ------------------------------------------
def profile_layer(
    text: str, where: str, source: str, *, allow_empty: bool = False, hint: str | None = None
) -> Layer:
    """A profile's YAML: `where` names it in errors, `source` in the "came from" line."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or "cannot be parsed"
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise WorkerlabError(f"{where} is not valid YAML: {problem}{at}", hint=hint) from None
    if doc is None and allow_empty:
        doc = {}
    if not isinstance(doc, dict):
        raise WorkerlabError(
            f"{where} is not a YAML mapping with the keys quota and limitRange",
            hint=hint or "see docs/class.md, 'Class settings'",
        )
    problems = []
    for key in doc:
        if key not in PROFILE_KEYS:
            problems.append(
                f"{where}: unknown key {key!r}{did_you_mean(str(key), PROFILE_KEYS)} "
                f"(allowed: {', '.join(PROFILE_KEYS)})"
            )
    quota = _profile_quota(doc.get("quota"), where, problems)
    limits = _profile_limit_range(doc.get("limitRange"), where, problems)
    _raise(problems, hint)
    return Layer(source, quota=quota, limit_range=limits)


def _profile_quota(found: Any, where: str, problems: list[str]) -> dict[str, str]:
    if found is None:
        return {}
    if not isinstance(found, dict):
        problems.append(f'{where}: quota must be a mapping of resource: quantity, like pods: "12"')
        return {}
    quota = {}
    for key, value in found.items():
        name = str(key)
        problem = quota_key_problem(name) or quantity_problem(value, is_counted(name))
        if problem:
            problems.append(f"{where}: quota.{name}: {problem}")
        else:
            quota[name] = str(value)
    return quota


def _profile_limit_range(found: Any, where: str, problems: list[str]) -> dict[str, dict[str, str]]:
    if found is None:
        return {}
    if not isinstance(found, dict):
        problems.append(
            f"{where}: limitRange must be a mapping of section: {{resource: quantity}}, "
            'like max: {cpu: "2"}'
        )
        return {}
    limits: dict[str, dict[str, str]] = {}
    for section, resources in found.items():
        if str(section) not in LIMIT_SECTIONS:
            problems.append(f"{where}: limitRange.{section}: {limit_key_problem(str(section), '')}")
            continue
        if not isinstance(resources, dict):
            problems.append(
                f"{where}: limitRange.{section} must be a mapping of resource: quantity, "
                'like {cpu: "2"}'
            )
            continue
        for resource, value in resources.items():
            key = f"limitRange.{section}.{resource}"
            problem = limit_key_problem(str(section), str(resource)) or quantity_problem(value)
            if problem:
                problems.append(f"{where}: {key}: {problem}")
            else:
                limits.setdefault(str(section), {})[str(resource)] = str(value)
    return limits


def file_layer(path: Path) -> Layer:
    """`--profile FILE`."""
    where = f"--profile {path}"
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise WorkerlabError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise WorkerlabError(f"{where}: cannot read it: {reason}") from None
    return profile_layer(text, where, where)


def _not_found(error: KubeError) -> bool:
    text = str(error)
    return "notfound" in text.lower().replace(" ", "") or "not found" in text


def cluster_layer(kube: Kube) -> Layer | None:
    """The cluster's class defaults (the Helm chart's values), or None when it has none."""
    hint = (
        f"fix the chart's class.quota / class.limitRange values (helm upgrade), or "
        f"kubectl -n {OPERATOR_NAMESPACE} edit configmap {CLASS_DEFAULTS_CONFIGMAP}"
    )
    try:
        configmap = kube.json(
            "get",
            "configmap",
            CLASS_DEFAULTS_CONFIGMAP,
            "--namespace",
            OPERATOR_NAMESPACE,
            namespaced=False,
        )
    except KubeError as error:
        if _not_found(error):
            return None  # a cluster without class defaults: the normal case on a laptop
        raise WorkerlabError(
            f"cannot read configmap {CLUSTER_DEFAULTS} (the class defaults): {error}"
        ) from None
    data = (configmap or {}).get("data") or {}
    where = f"configmap {CLUSTER_DEFAULTS}"
    if PROFILE_KEY not in data:
        raise WorkerlabError(f"{where} has no data key {PROFILE_KEY}", hint=hint)
    return profile_layer(
        str(data[PROFILE_KEY]),
        f"{where} ({PROFILE_KEY})",
        f"cluster {CLUSTER_DEFAULTS}",
        allow_empty=True,
        hint=hint,
    )


# --- the merged settings --------------------------------------------------------------------
@dataclass(frozen=True)
class ClassSettings:
    """What every learner namespace gets, and which layers it came from."""

    quota: dict[str, str]
    limit_range: dict[str, dict[str, str]]
    layers: tuple[Layer, ...]

    def limit_range_item(self) -> dict[str, Any]:
        """The LimitRange's `spec.limits` item."""
        item: dict[str, Any] = {"type": "Container"}
        for section in ("default", "defaultRequest", "max", "min"):
            if self.limit_range.get(section):
                item[section] = dict(self.limit_range[section])
        return item

    def describe(self) -> str:
        """One line: where the quota and the limit range came from."""
        quota = [layer.source for layer in self.layers if layer.quota]
        limits = [layer.source for layer in self.layers if any(layer.limit_range.values())]
        return f"quota: {' + '.join(quota) or 'none'}; limit range: {' + '.join(limits) or 'none'}"


def merge(layers: Iterable[Layer]) -> ClassSettings:
    """Each layer over the ones before it, key by key (per section for the limit range); the
    result's limit range must be ordered min <= defaultRequest <= default <= max."""
    layers = tuple(layers)
    quota: dict[str, str] = {}
    limits: dict[str, dict[str, str]] = {}
    for layer in layers:
        quota.update(layer.quota)
        for section, values in layer.limit_range.items():
            limits.setdefault(section, {}).update(values)
    settings = ClassSettings(quota, limits, tuple(layer for layer in layers if not layer.empty))
    problems = order_problems(limits)
    if problems:
        sources = " + ".join(layer.source for layer in settings.layers)
        raise WorkerlabError(
            "limit range: " + "; ".join(problems) + ": nothing was created",
            hint=f"values merge over each other ({sources}); set both sides, e.g. "
            "--limit-range defaultRequest.cpu=100m,max.cpu=1",
        )
    return settings


def order_problems(limits: Mapping[str, Mapping[str, str]]) -> list[str]:
    """What the API server would refuse: per resource, min <= defaultRequest <= default <= max."""
    problems = []
    for resource in LIMIT_RESOURCES:
        found = [(s, limits[s][resource]) for s in LIMIT_SECTIONS if resource in limits.get(s, {})]
        for i, (low, low_value) in enumerate(found):
            for high, high_value in found[i + 1 :]:
                if parse_quantity(high_value) < parse_quantity(low_value):
                    problems.append(
                        f"{high}.{resource} {high_value} is below {low}.{resource} {low_value}"
                    )
    return problems


def local_layers(
    profile: Path | None, quota: Iterable[str] = (), limit_range: Iterable[str] = ()
) -> list[Layer]:
    """The layers from the command line, in precedence order; every problem in one error."""
    layers: list[Layer] = []
    errors: list[WorkerlabError] = []
    for make in (
        lambda: file_layer(profile) if profile is not None else None,
        lambda: quota_layer(quota),
        lambda: limit_range_layer(limit_range),
    ):
        try:
            layer = make()
        except WorkerlabError as error:
            errors.append(error)
            continue
        if layer is not None:
            layers.append(layer)
    if len(errors) == 1:
        raise errors[0]
    _raise([str(error) for error in errors])
    return layers


def resolve(kube: Kube | None, local: Iterable[Layer] = ()) -> ClassSettings:
    """Built-in defaults, then the cluster's (when `kube` is given and it has some), then
    `local` (`local_layers`): merged and checked."""
    layers = [built_in_layer()]
    cluster = cluster_layer(kube) if kube is not None else None
    if cluster is not None:
        layers.append(cluster)
    return merge([*layers, *local])
