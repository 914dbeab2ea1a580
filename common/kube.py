"""A thin, read-mostly client for the lab cluster that shells out to `kubectl`.

Why kubectl and not the `kubernetes` package: the CLI's base install stays light (the Python
client is only in the `operator` extra), it uses exactly the credentials and context the learner
uses in the lab's steps, and `kubectl get --raw .../proxy/...` reaches pods through the API
server's pod proxy, as the operator does. Every call is bounded by a timeout.

The context is pinned so a drill can never hit another cluster. Which one (`choose_context`):
`--context`, else `$WORKERLAB_KUBE_CONTEXT`, else the kubeconfig's current-context *only if*
`workerlab class add` wrote it (named `workerlab-NAME`: a learner's kubeconfig, selected with
`KUBECONFIG=class/NAME.kubeconfig`), else `kind-workerlab`. Any other current-context (a
production cluster, say) is never used implicitly. The namespace (`choose_namespace`):
`--namespace`, else the chosen context's namespace in the kubeconfig, else `workerlab`.
"""

from __future__ import annotations

import builtins
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from workerlab.api.objects import event_time
from workerlab.api.resource import (
    CLASS_CONTEXT_PREFIX,
    LAB_NAMESPACE,
    LABEL_INSTANCE,
    LEARNER_NAMESPACE_PREFIX,
    RESOURCE,
)
from workerlab.common.errors import KubeError, MissingPrerequisite, WorkerlabError

DEFAULT_CONTEXT = "kind-workerlab"
DEFAULT_NAMESPACE = LAB_NAMESPACE
KUBECTL_TIMEOUT_S = 30


def context_from_env() -> str:
    return os.environ.get("WORKERLAB_KUBE_CONTEXT") or DEFAULT_CONTEXT


def choose_context(explicit: str | None, env: str | None, config: dict) -> str:
    """--context, $WORKERLAB_KUBE_CONTEXT, a class context that is current, or kind-workerlab."""
    if explicit:
        return explicit
    if env:
        return env
    current = str(config.get("current-context") or "")
    if current.startswith(CLASS_CONTEXT_PREFIX) and current != DEFAULT_CONTEXT:
        return current
    return DEFAULT_CONTEXT


def choose_namespace(explicit: str | None, config: dict, context: str) -> str:
    """--namespace, else the context's namespace in the kubeconfig, else `workerlab`."""
    if explicit:
        return explicit
    for entry in config.get("contexts") or []:
        if isinstance(entry, dict) and entry.get("name") == context:
            namespace = (entry.get("context") or {}).get("namespace")
            if namespace:
                return str(namespace)
    return DEFAULT_NAMESPACE


def is_learner_namespace(namespace: str) -> bool:
    """A namespace made by `workerlab class add`: the learner holds namespaced rights only."""
    return namespace.startswith(LEARNER_NAMESPACE_PREFIX)


def kubeconfig_view(kubectl: str) -> dict:
    """The merged kubeconfig (honours $KUBECONFIG); {} when there is none or it is unreadable."""
    try:
        done = subprocess.run(
            [kubectl, "config", "view", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=KUBECTL_TIMEOUT_S,
            check=False,
        )
        found = json.loads(done.stdout) if done.returncode == 0 else {}
    except (subprocess.TimeoutExpired, OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def resolve(context: str | None, namespace: str | None) -> Kube:
    """A Kube for the options as typed (None = not given), filled in from the kubeconfig."""
    env = os.environ.get("WORKERLAB_KUBE_CONTEXT")
    config: dict = {}
    if not (context or env) or not namespace:
        try:
            config = kubeconfig_view(find_kubectl())
        except MissingPrerequisite:
            config = {}  # no kubectl: the first call that needs it says so
    chosen = choose_context(context, env, config)
    return Kube(context=chosen, namespace=choose_namespace(namespace, config, chosen))


def find_kubectl() -> str:
    """The toolchain's kubectl (matching the server, built by `make up`) first, then PATH."""
    cache = Path(
        os.environ.get("WORKERLAB_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "workerlab"
    )
    candidates = sorted((cache / "k8s").glob("v*/bin/kubectl"), reverse=True)
    candidates.append(cache / "bin" / "kubectl")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("kubectl")
    if found:
        return found
    raise MissingPrerequisite(
        "kubectl not found on PATH or in ~/.cache/workerlab",
        hint="run `make up` (it builds a matching kubectl) or install kubectl",
    )


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


class Kube:
    """kubectl with a fixed context and namespace; JSON in, dicts out."""

    def __init__(
        self,
        context: str | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        kubectl: str | None = None,
    ) -> None:
        self.context = context or context_from_env()
        self.namespace = namespace
        self._kubectl = kubectl

    @property
    def kubectl(self) -> str:
        if self._kubectl is None:
            self._kubectl = find_kubectl()
        return self._kubectl

    def command(self, *args: str, namespaced: bool = True) -> list[str]:
        """The kubectl command line for `args`, pinned to this context (and namespace)."""
        cmd = [self.kubectl, "--context", self.context]
        if namespaced:
            cmd += ["--namespace", self.namespace]
        return cmd + list(args)

    def run(
        self,
        *args: str,
        namespaced: bool = True,
        stdin: str | None = None,
        timeout: float = KUBECTL_TIMEOUT_S,
    ) -> str:
        cmd = self.command(*args, namespaced=namespaced)
        try:
            done = subprocess.run(
                cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise KubeError(
                f"kubectl {' '.join(args[:3])} timed out after {timeout:.0f}s",
                hint=f"is the cluster up? kubectl --context {self.context} get nodes",
            ) from None
        if done.returncode != 0:
            raise self._classify(done.stderr or done.stdout, args)
        return done.stdout

    def _classify(self, stderr: str, args: tuple[str, ...]) -> WorkerlabError:
        line = _one_line(stderr) or f"kubectl {' '.join(args)} failed"
        lowered = stderr.lower()
        if "context was not found" in lowered or (
            "does not exist" in lowered and "context" in lowered
        ):
            return MissingPrerequisite(
                f"kubectl context {self.context!r} not found: the lab cluster is not up",
                hint="run `make up` (or set WORKERLAB_KUBE_CONTEXT)",
            )
        if any(
            s in lowered
            for s in (
                "connection refused",
                "no such host",
                "i/o timeout",
                "unable to connect",
                "was refused",
            )
        ):
            return MissingPrerequisite(
                f"cannot reach the API server of {self.context!r}: {line}",
                hint="run `make up`, or wait for the API server to come back",
            )
        return KubeError(line)

    def json(self, *args: str, namespaced: bool = True, timeout: float = KUBECTL_TIMEOUT_S) -> Any:
        out = self.run(*args, "-o", "json", namespaced=namespaced, timeout=timeout)
        return json.loads(out)

    # --- reads ----------------------------------------------------------------------------
    def get(self, kind: str, name: str, *, namespaced: bool = True) -> dict | None:
        """One object, or None when it does not exist."""
        try:
            return self.json("get", kind, name, namespaced=namespaced)
        except KubeError as error:
            if "notfound" in str(error).lower().replace(" ", "") or "not found" in str(error):
                return None
            raise

    def list(
        self, kind: str, selector: str | None = None, *, namespaced: bool = True
    ) -> builtins.list[dict]:
        args = ["get", kind]
        if selector:
            args += ["-l", selector]
        return self.json(*args, namespaced=namespaced).get("items", [])

    def worker_cluster(self, name: str) -> dict:
        wc = self.get(RESOURCE, name)
        if wc is None:
            raise MissingPrerequisite(
                f"WorkerCluster {name!r} not found in namespace {self.namespace!r}",
                hint=f"kubectl --context {self.context} -n {self.namespace} get wc",
            )
        return wc

    def worker_clusters(self) -> builtins.list[dict]:
        try:
            return self.list(RESOURCE)
        except KubeError as error:
            if "doesn't have a resource type" in str(error) or "the server could not find" in str(
                error
            ):
                raise MissingPrerequisite(
                    "the WorkerCluster CRD is not installed",
                    hint="kubectl apply -k manifests/  (or `make up`)",
                ) from None
            raise

    def pods_of(self, wc_name: str) -> builtins.list[dict]:
        pods = self.list("pods", f"{LABEL_INSTANCE}={wc_name}")
        return sorted(pods, key=lambda p: p["metadata"]["name"])

    def events_for(self, kind: str, name: str) -> builtins.list[dict]:
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        items = self.json("get", "events", "--field-selector", selector).get("items", [])
        return sorted(items, key=event_time)

    # --- the pod proxy: the API server forwards to the pod's port ---------------------------
    def proxy_path(self, pod: str, port: int, path: str) -> str:
        return f"/api/v1/namespaces/{self.namespace}/pods/{pod}:{port}/proxy/{path.lstrip('/')}"

    def proxy_get(self, pod: str, port: int, path: str, timeout: float = 10) -> Any:
        out = self.run(
            "get", "--raw", self.proxy_path(pod, port, path), namespaced=False, timeout=timeout
        )
        return json.loads(out)

    def proxy_post(self, pod: str, port: int, path: str, timeout: float = 10) -> Any:
        out = self.run(
            "create",
            "--raw",
            self.proxy_path(pod, port, path),
            "-f",
            "-",
            namespaced=False,
            stdin="",
            timeout=timeout,
        )
        return json.loads(out) if out.strip() else {}
