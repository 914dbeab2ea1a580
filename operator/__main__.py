"""`workerlab operator` / `python -m workerlab.operator`: run the master against a cluster.

Before handing over to kopf it checks its settings, then, with short timeouts, that an API
server answers and the WorkerCluster CRD is installed, so a bad setting or a missing cluster is
one clear line instead of a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import sys
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from workerlab.api.resource import (
    ENV_WORKER_IMAGE,
    ENV_WORKER_IMAGE_PULL_POLICY,
    ENV_WORKER_IMAGE_PULL_SECRETS,
    OPERATOR_NAMESPACE,
)
from workerlab.operator.images import (
    DEFAULT_PULL_POLICY,
    FALLBACK_IMAGE,
    PULL_POLICIES,
    InvalidSetting,
    WorkerImage,
    default_worker_image,
)

if TYPE_CHECKING:
    from workerlab.operator.leadership import Elector

DEFAULT_PEERING = "workerlab"
# Each default-image setting: its flag and the env var the Helm chart sets instead.
WORKER_IMAGE_SETTINGS = {
    "reference": ("--worker-image", ENV_WORKER_IMAGE),
    "pull_policy": ("--worker-image-pull-policy", ENV_WORKER_IMAGE_PULL_POLICY),
    "pull_secrets": ("--worker-image-pull-secret", ENV_WORKER_IMAGE_PULL_SECRETS),
}


def _add_worker_image_args(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """The default worker image: a flag, else the env the Helm chart sets, else unset."""
    group = parser.add_argument_group(
        "default worker image", "for WorkerClusters without spec.image; a change rolls their pods"
    )
    group.add_argument(
        "--worker-image",
        metavar="REF",
        default=env.get(ENV_WORKER_IMAGE) or None,
        help=f"image reference (env {ENV_WORKER_IMAGE}); unset: {FALLBACK_IMAGE}, with a warning",
    )
    group.add_argument(
        "--worker-image-pull-policy",
        metavar="|".join(PULL_POLICIES),
        default=env.get(ENV_WORKER_IMAGE_PULL_POLICY) or None,
        help=f"its pull policy (env {ENV_WORKER_IMAGE_PULL_POLICY}); default {DEFAULT_PULL_POLICY}",
    )
    group.add_argument(
        "--worker-image-pull-secret",
        metavar="NAME",
        action="append",
        dest="worker_image_pull_secrets",
        help="a Secret, in each WorkerCluster's namespace, to pull it with (repeatable; env "
        f"{ENV_WORKER_IMAGE_PULL_SECRETS}, comma-separated)",
    )


def worker_image(args: argparse.Namespace) -> tuple[WorkerImage, str | None]:
    """The validated default worker image, and a warning when none is configured.

    Raises ValueError with one line naming the flag and env var of a bad setting.
    """
    try:
        image = default_worker_image(
            args.worker_image, args.worker_image_pull_policy, args.worker_image_pull_secrets
        )
    except InvalidSetting as error:
        flag, env = WORKER_IMAGE_SETTINGS[error.setting]
        raise ValueError(f"bad {flag} (or {env}): {error}") from None
    if (args.worker_image or "").strip():
        return image, None
    return image, (
        f"no default worker image configured (--worker-image or {ENV_WORKER_IMAGE}): "
        f"WorkerClusters without spec.image run {image.reference}, a local development build"
    )


def parse_args(argv: list[str], env: Mapping[str, str] | None = None) -> argparse.Namespace:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="workerlab operator",
        description="Run the WorkerCluster operator (the cluster-level master) with kopf.",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="serve WorkerClusters in this namespace (repeatable); default: workerlab",
    )
    scope.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="serve WorkerClusters in every namespace",
    )
    parser.add_argument(
        "--standalone",
        action="store_true",
        help="no peering: do not pause when another operator instance is running",
    )
    parser.add_argument(
        "--leader-elect",
        action="store_true",
        help="one active instance among several by a Lease (a standby takes over when the "
        "active one dies or stops), instead of kopf's peering",
    )
    parser.add_argument(
        "--leader-election-namespace",
        default=env.get("POD_NAMESPACE") or OPERATOR_NAMESPACE,
        help="where the Lease workerlab-operator lives (env POD_NAMESPACE; default "
        f"{OPERATOR_NAMESPACE})",
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=0,
        help="peering priority; an instance pauses while one with higher or equal priority runs",
    )
    parser.add_argument("--peering-name", default=DEFAULT_PEERING, help="ClusterKopfPeering to use")
    parser.add_argument(
        "--peering-lifetime",
        type=int,
        default=None,
        help="seconds a peer's keep-alive is trusted (default 15; kopf's own default: 60); a "
        "killed active instance leaves the others paused this long",
    )
    parser.add_argument(
        "--liveness",
        default="http://127.0.0.1:8080/healthz",
        help="liveness endpoint URL ('' to disable); in-cluster: http://0.0.0.0:8080/healthz",
    )
    parser.add_argument("--metrics-port", type=int, default=9090, help="Prometheus port (0: off)")
    parser.add_argument("--metrics-address", default="127.0.0.1", help="Prometheus bind address")
    parser.add_argument(
        "--process-poll-seconds",
        type=float,
        default=10.0,
        help="how often Ready pods are asked for their processes",
    )
    parser.add_argument(
        "--resync-seconds", type=float, default=300.0, help="safety-net resync period"
    )
    parser.add_argument(
        "--log-format", choices=["plain", "full", "json"], default="full", help="log line format"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    _add_worker_image_args(parser, env)
    args = parser.parse_args(argv)
    if args.worker_image_pull_secrets is None:  # no flag: the env's comma-separated list
        args.worker_image_pull_secrets = (env.get(ENV_WORKER_IMAGE_PULL_SECRETS) or "").split(",")
    return args


def preflight(args: argparse.Namespace) -> str | None:
    """None when the cluster is usable, else the one-line reason it is not."""
    from kubernetes import config as kube_config

    from workerlab.api.resource import GROUP, PLURAL, VERSION
    from workerlab.operator.kube import ApiError, Kube

    try:
        kube = Kube.connect()
    except (kube_config.ConfigException, OSError) as error:
        return f"no usable kubeconfig or in-cluster credentials ({error})"
    try:
        kube.server_version(timeout=5.0)
    except Exception as error:
        host = kube.api.configuration.host
        return f"cannot reach the Kubernetes API server at {host} ({type(error).__name__}: {error})"
    namespace = "" if args.all_namespaces else f"namespaces/{args.namespace[0]}/"
    try:
        kube._call(
            "GET", f"/apis/{GROUP}/{VERSION}/{namespace}{PLURAL}", query={"limit": "1"}, timeout=5.0
        )
    except ApiError as error:
        if error.status == 404:
            return "the WorkerCluster CRD is not installed: run `kubectl apply -k manifests/`"
        return f"cannot list WorkerClusters: {error}"
    if not args.standalone and not args.leader_elect:
        try:
            if kube.ensure_cluster_peering(args.peering_name) == "no-crd":
                return (
                    "kopf's peering CRDs are not installed (run `kubectl apply -k manifests/`) "
                    "or pass --standalone"
                )
        except ApiError as error:
            if error.status != 403:
                return f"cannot prepare peering object {args.peering_name}: {error}"
            # Not allowed to create it: kopf will use it if it exists, or fail clearly if not.
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not args.all_namespaces and not args.namespace:
        args.namespace = ["workerlab"]
    try:
        image, unconfigured = worker_image(args)
    except ValueError as error:
        print(f"workerlab operator: {error}", file=sys.stderr)
        return 2

    import kopf

    log_format = {
        "plain": kopf.LogFormat.PLAIN,
        "full": kopf.LogFormat.FULL,
        "json": kopf.LogFormat.JSON,
    }[args.log_format]
    kopf.configure(verbose=args.verbose, log_format=log_format)
    if not args.verbose:
        # kopf logs every handler call on every pod event; our own lines say what matters.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)

    problem = preflight(args)
    if problem:
        print(f"workerlab operator: {problem}", file=sys.stderr)
        return 2
    log = logging.getLogger("workerlab.operator")
    if unconfigured:
        log.warning(unconfigured)  # once, at start: the operator still runs (a laptop's dev loop)

    from workerlab.operator import handlers

    handlers.OPTIONS.metrics_port = args.metrics_port
    handlers.OPTIONS.metrics_address = args.metrics_address
    handlers.OPTIONS.process_poll_seconds = args.process_poll_seconds
    handlers.OPTIONS.resync_seconds = args.resync_seconds
    handlers.OPTIONS.namespaces = None if args.all_namespaces else list(args.namespace)
    handlers.OPTIONS.default_image = image
    if args.peering_lifetime is not None:
        handlers.OPTIONS.peering_lifetime = args.peering_lifetime

    elector = lead(args, log) if args.leader_elect else None
    log.info(
        "serving %s; default worker image %s (%s)",
        "all namespaces" if args.all_namespaces else ", ".join(args.namespace),
        image.reference,
        image.pull_policy,
    )
    try:
        with contextlib.suppress(KeyboardInterrupt):
            # With the Lease this is the only active instance: kopf's peering would only add a
            # second, slower lock (its records are trusted for their whole lifetime).
            standalone = args.standalone or args.leader_elect
            kopf.run(
                clusterwide=args.all_namespaces,
                namespaces=args.namespace,
                standalone=standalone,
                priority=args.priority,
                peering_name=None if standalone else args.peering_name,
                liveness_endpoint=args.liveness or None,
            )
    finally:
        if elector is not None:
            elector.release()  # a graceful stop hands over at once
    return 0


def identity() -> str:
    """This instance in the Lease: the pod's name (the chart sets POD_ID; a container restarted
    in the same pod is the same instance, its predecessor is gone), else host and process."""
    return os.environ.get("POD_ID") or f"{socket.gethostname()}_{os.getpid()}"


def lead(args: argparse.Namespace, log: logging.Logger) -> Elector:
    """Campaign for the Lease (a standby answers its liveness URL meanwhile), then keep it in a
    thread and fence every write of this process on it."""
    from workerlab.operator import kube as kube_module
    from workerlab.operator import leadership
    from workerlab.operator.kube import Kube

    elector = leadership.Elector(
        Kube.connect(retries=False), args.leader_election_namespace, identity()
    )
    with leadership.standby_health(args.liveness):
        if not elector.campaign():
            raise SystemExit(0)

    def fence() -> None:
        if not elector.write_allowed():
            leadership.exit_after_losing("a write after the renew deadline")

    kube_module.write_fence = fence
    threading.Thread(target=elector.keep, name="lease-keeper", daemon=True).start()
    log.info("active master: lease %s/%s", args.leader_election_namespace, leadership.LEASE_NAME)
    return elector


if __name__ == "__main__":
    sys.exit(main())
