"""Where `workerlab load` sends traffic: a URL, or `wc/NAME` resolved to its NodePort on loopback.

Host-side traffic goes to 127.0.0.1 only (the kind cluster maps its NodePorts onto loopback). A
`wc/NAME` without a fixed NodePort (a learner's `demo` on a shared cluster: node ports are one
range for the whole cluster, so learners get ClusterIP Services) is reached through the API
server's service proxy: `reach()` runs `kubectl proxy` on an ephemeral 127.0.0.1 port for the
length of the run, with the learner's own credentials (RBAC: services/proxy). The API server
picks a ready endpoint per request, so the load still spreads over the pods.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from workerlab.common.errors import MissingPrerequisite, WorkerlabError
from workerlab.common.kube import Kube

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class Target:
    base_url: str  # scheme://host:port/ (no path)
    label: str  # what the learner typed, for reports and the journal
    wc: str | None = None
    namespace: str | None = None
    # set when the target is reached through the API server's service proxy (no NodePort)
    proxy_path: str | None = None

    def url(self, path: str) -> str:
        """The base URL (which may carry a path prefix: the service proxy's) + the path."""
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"


def is_wc_ref(text: str) -> bool:
    return text.startswith(("wc/", "workercluster/", "workerclusters/"))


def wc_name(text: str) -> str:
    name = text.split("/", 1)[1]
    if not name:
        raise WorkerlabError(f"{text!r}: expected wc/NAME, e.g. wc/demo")
    return name


def node_port_url(wc: dict) -> str | None:
    service = (wc.get("spec") or {}).get("service") or {}
    if service.get("type") == "NodePort" and service.get("nodePort"):
        return f"http://127.0.0.1:{int(service['nodePort'])}/"
    return None


def parse_url(text: str) -> Target:
    if "://" not in text:
        text = f"http://{text}"
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise WorkerlabError(f"{text!r} is not an http(s) URL or wc/NAME")
    if parts.hostname not in LOOPBACK_HOSTS:
        raise WorkerlabError(
            f"{parts.hostname!r} is not a loopback address: the lab only sends load to "
            "127.0.0.1 (kind maps its ports there)"
        )
    return Target(base_url=f"{parts.scheme}://{parts.netloc}/", label=text)


def split_url_path(text: str) -> tuple[str, str | None]:
    """'http://h:1/work/cpu?ms=5' -> ('http://h:1', '/work/cpu?ms=5'); no path -> None."""
    if is_wc_ref(text):
        return text, None
    full = text if "://" in text else f"http://{text}"
    parts = urlsplit(full)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{parts.scheme}://{parts.netloc}", (path if path not in ("", "/") else None)


def resolve(text: str, kube: Kube | None = None) -> Target:
    if not is_wc_ref(text):
        return parse_url(text)
    kube = kube or Kube()
    name = wc_name(text)
    wc = kube.worker_cluster(name)
    url = node_port_url(wc)
    if url is not None:
        return Target(base_url=url, label=text, wc=name, namespace=kube.namespace)
    service = kube.get("service", name)
    if service is None:
        raise MissingPrerequisite(
            f"wc/{name} has no Service yet, so it is not reachable",
            hint=f"is the operator running? workerlab status {name}",
        )
    ports = (service.get("spec") or {}).get("ports") or [{}]
    return Target(
        base_url="",
        label=text,
        wc=name,
        namespace=kube.namespace,
        proxy_path=service_proxy_path(kube.namespace, name, str(ports[0].get("name") or "")),
    )


def service_proxy_path(namespace: str, service: str, port_name: str) -> str:
    port = f":{port_name}" if port_name else ""
    return f"/api/v1/namespaces/{namespace}/services/{service}{port}/proxy/"


SERVING = re.compile(r"Starting to serve on (?P<host>127\.0\.0\.1):(?P<port>\d+)")
PROXY_START_TIMEOUT_S = 15


@contextlib.contextmanager
def reach(target: Target, kube: Kube) -> Iterator[Target]:
    """The target itself, or (service proxy) the target behind a `kubectl proxy` on loopback,
    stopped when the block ends."""
    if target.proxy_path is None:
        yield target
        return
    cmd = kube.command(
        "proxy",
        "--port=0",
        "--address=127.0.0.1",
        "--accept-hosts=^(localhost|127\\.0\\.0\\.1)$",
        namespaced=False,
    )
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as error:
        raise MissingPrerequisite(f"cannot start kubectl proxy: {error}") from None
    try:
        line: list[str] = []
        reader = threading.Thread(
            target=lambda: line.append(proc.stdout.readline() if proc.stdout else ""), daemon=True
        )
        reader.start()
        reader.join(PROXY_START_TIMEOUT_S)
        found = SERVING.search(line[0]) if line else None
        if found is None:
            problem = proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
            raise MissingPrerequisite(
                "kubectl proxy did not start" + (f": {problem.strip()}" if problem else ""),
                hint=f"kubectl --context {kube.context} proxy --port=0",
            )
        base = f"http://{found['host']}:{found['port']}{target.proxy_path}"
        yield dataclasses.replace(target, base_url=base)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
