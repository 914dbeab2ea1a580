"""A control plane without kubelets, from the toolchain's cached binaries, all on 127.0.0.1:
etcd, kube-apiserver (RBAC, token auth, optional audit log), kube-controller-manager (the
controllers asked for) and, when asked, kube-scheduler.

Shared by the integration tests (tests/integration/conftest.py, nodeless: pods stay Pending) and
the scale benchmark (bench/scale/, where kwok fakes the nodes). No pytest here: a problem is a
RuntimeError, and the fixtures turn it into a test failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

from support.polling import wait_until

CACHE = Path(os.environ.get("WORKERLAB_CACHE", Path.home() / ".cache" / "workerlab"))
K8S_BIN = CACHE / "k8s" / os.environ.get("K8S_VERSION", "v1.34.4") / "bin"
ADMIN_TOKEN = "integration-admin-token"
# What the integration tests need: ownerReference GC, the default service account, namespaces.
BASE_CONTROLLERS = ("garbagecollector", "serviceaccount", "namespace")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_etcd() -> Path | None:
    found = shutil.which("etcd")
    if found:
        return Path(found)
    candidates = sorted((CACHE / "node-bin").glob("etcd*"))
    return candidates[-1] if candidates else None


class ControlPlane:
    """etcd, kube-apiserver and kube-controller-manager (+ kube-scheduler) on 127.0.0.1. Admin
    kubectl through `kubectl`/`ok`/`json`, context `it`.

    users: extra token users {name: token}, each in system:masters, so that every component has a
    user of its own (the audit log tells them apart). audit_policy: a policy dict; the log is
    written to `audit_log` (JSON lines)."""

    wait = staticmethod(wait_until)  # tests poll through the plane fixture they already hold

    def __init__(
        self,
        workdir: Path,
        controllers: tuple[str, ...] = BASE_CONTROLLERS,
        leader_elect: bool = False,
        scheduler: bool = False,
        users: dict[str, str] | None = None,
        audit_policy: dict | None = None,
    ) -> None:
        self.dir = workdir
        self.procs: dict[str, subprocess.Popen] = {}
        self.kubeconfig = workdir / "kubeconfig"
        self.controllers = controllers
        self.leader_elect = leader_elect
        self.scheduler = scheduler
        self.users = dict(users or {})
        self.audit_policy = audit_policy
        self.audit_log = workdir / "audit.log"
        self.port = 0

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.dir / f"{name}.log", "wb")  # noqa: SIM115 (kept open for the process)
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def start(self) -> None:
        etcd = find_etcd()
        apiserver = K8S_BIN / "kube-apiserver"
        manager = K8S_BIN / "kube-controller-manager"
        needed = [etcd, apiserver, manager] + (
            [K8S_BIN / "kube-scheduler"] if self.scheduler else []
        )
        missing = [str(p) for p in needed if p is None or not p.exists()]
        if missing:
            raise RuntimeError(
                f"control-plane binaries missing: {missing}; build them: make toolchain"
            )
        client_port, peer_port = free_port(), free_port()
        self.port = free_port()
        subprocess.run(
            ["openssl", "genrsa", "-out", str(self.dir / "sa.key"), "2048"],
            check=True,
            capture_output=True,
        )
        rows = [f'{ADMIN_TOKEN},admin,admin,"system:masters"']
        rows += [f'{token},{user},{user},"system:masters"' for user, token in self.users.items()]
        (self.dir / "tokens.csv").write_text("\n".join(rows) + "\n")
        self._spawn(
            "etcd",
            [
                str(etcd),
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{client_port}",
                f"--advertise-client-urls=http://127.0.0.1:{client_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
            ],
        )
        audit: list[str] = []
        if self.audit_policy is not None:
            policy = self.dir / "audit-policy.json"
            policy.write_text(json.dumps(self.audit_policy))
            audit = [
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=batch",
                "--audit-log-maxsize=100000",  # MB: never rotate (0 means 100)
            ]
        self._spawn(
            "kube-apiserver",
            [
                str(apiserver),
                f"--etcd-servers=http://127.0.0.1:{client_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--cert-dir={self.dir / 'certs'}",
                f"--token-auth-file={self.dir / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={self.dir / 'sa.key'}",
                f"--service-account-signing-key-file={self.dir / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--service-cluster-ip-range=10.96.0.0/16",
                *audit,
            ],
        )
        self.write_kubeconfig(self.kubeconfig, ADMIN_TOKEN)
        wait_until(
            lambda: self.kubectl("get", "--raw", "/readyz").returncode == 0, 90, "kube-apiserver"
        )
        self.write_kubeconfig(self.kubeconfig, ADMIN_TOKEN)  # now with the server's own CA
        self._spawn(
            "kube-controller-manager",
            [
                str(manager),
                f"--kubeconfig={self.user_kubeconfig('kube-controller-manager')}",
                f"--controllers={','.join(self.controllers)}",
                f"--leader-elect={'true' if self.leader_elect else 'false'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
            ],
        )
        if self.scheduler:
            self._spawn(
                "kube-scheduler",
                [
                    str(K8S_BIN / "kube-scheduler"),
                    f"--kubeconfig={self.user_kubeconfig('kube-scheduler')}",
                    f"--leader-elect={'true' if self.leader_elect else 'false'}",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={free_port()}",
                ],
            )

    def user_kubeconfig(self, user: str) -> Path:
        """A kubeconfig for one of `users` (the admin's when the user has no token of its own)."""
        path = self.dir / f"{user}.kubeconfig"
        self.write_kubeconfig(path, self.users.get(user, ADMIN_TOKEN))
        return path

    def write_kubeconfig(self, path: Path, token: str) -> None:
        server = f"https://127.0.0.1:{self.port}"
        # The API server's self-signed certificate (written at its start) holds its CA: verify
        # against it as a cluster's clients do. Skipping verification is not only less real: a
        # Python client then loads the system's whole CA bundle for every new connection.
        ca = self.dir / "certs" / "apiserver.crt"
        trust: dict = {"certificate-authority": str(ca)} if ca.exists() else {}
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "it",
                            "cluster": {
                                "server": server,
                                **(trust or {"insecure-skip-tls-verify": True}),
                            },
                        }
                    ],
                    "users": [{"name": "it", "user": {"token": token}}],
                    "contexts": [{"name": "it", "context": {"cluster": "it", "user": "it"}}],
                    "current-context": "it",
                }
            )
        )

    def kubectl(self, *args: str, stdin: str | None = None, kubeconfig: Path | None = None):
        binary = K8S_BIN / "kubectl"
        return subprocess.run(
            [str(binary if binary.exists() else "kubectl"), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**os.environ, "KUBECONFIG": str(kubeconfig or self.kubeconfig)},
            timeout=60,
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self.kubectl(*args, stdin=stdin)
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result.stdout

    def json(self, *args: str) -> dict:
        return json.loads(self.ok(*args, "-o", "json"))

    def stop(self) -> None:
        procs = list(self.procs.values())
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
