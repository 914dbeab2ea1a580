"""Where `workerlab load` sends traffic: a URL, or `wc/NAME` resolved to its NodePort on loopback.

Host-side traffic goes to 127.0.0.1 only (the kind cluster maps its NodePorts onto loopback), so a
`wc/NAME` target must have a NodePort Service; anything else gets a clear error naming the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from workerlab.cli.errors import MissingPrerequisite, WorkerlabError
from workerlab.cli.kube import Kube

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class Target:
    base_url: str  # scheme://host:port/ (no path)
    label: str  # what the learner typed, for reports and the journal
    wc: str | None = None
    namespace: str | None = None

    def url(self, path: str) -> str:
        return urljoin(self.base_url, path if path.startswith("/") else f"/{path}")


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
    if url is None:
        raise MissingPrerequisite(
            f"wc/{name} has no NodePort Service, so it is not reachable from the host",
            hint=f"kubectl -n {kube.namespace} patch wc {name} --type merge "
            '-p \'{"spec":{"service":{"type":"NodePort","nodePort":30080}}}\'',
        )
    return Target(base_url=url, label=text, wc=name, namespace=kube.namespace)
