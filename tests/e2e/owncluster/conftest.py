"""An instructor's own cluster, and learners at their own machines (issue 22; spread: issue 5).

`own_cluster` is a SECOND kind cluster, `workerlab-multi` (1 control plane + 2 workers,
hack/kind-config-multinode.yaml), where the lab's bring-up installed nothing: `helm install` of
charts/workerlab, its images pulled from the lab's registry (hack/registry.sh), is the only
install step. Its API server is published on one address only, the host's side of a bridge the
suite makes (`class_net`): the learners' "machines" are network namespaces joined to that bridge
by veth pairs, so they reach the cluster exactly as a classroom's laptops reach an instructor's
cluster, at a non-loopback address with the kubeconfig they were handed. All of it stays on this
machine, and the suite removes it all at the end, also when a step fails.

The modules run in name order on the one cluster: spread (a), learners (b), upgrades and the
standby master (c), a lost machine (d), CRD upgrade and uninstall (e). Nothing here skips: a
missing tool, network or cluster fails with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.own_cluster import (
    BRIDGE,
    HOST_IP,
    LEARNERS,
    NAME,
    PREFIX,
    OwnCluster,
    ip,
    kind_config,
    netns_name,
    node_image,
    pushed_tags,
    remove_class_net,
    run,
)
from support.paths import CACHE, REPO
from support.tools import tool


@pytest.fixture(scope="session")
def class_net() -> Iterator[dict[str, str]]:
    """The bridge (HOST_IP on the host) and a namespace per learner, its veth on the bridge."""
    if shutil.which("ip") is None:
        pytest.fail("`ip` (iproute2) not found: the learners' network namespaces need it")
    remove_class_net()  # a leftover of an interrupted run
    routes = ip("route", "show", "to", "match", HOST_IP).stdout
    assert "default" in routes or not routes.strip(), (
        f"{HOST_IP}/{PREFIX} is already routed on this machine ({routes.strip()}): the suite "
        "needs a private range of its own"
    )
    try:
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{HOST_IP}/{PREFIX}", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        for learner, address in LEARNERS.items():
            ns, host_end = netns_name(learner), f"{netns_name(learner)}-h"
            ip("netns", "add", ns)
            ip("link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("link", "set", host_end, "master", BRIDGE)
            ip("link", "set", host_end, "up")
            ip("-n", ns, "addr", "add", f"{address}/{PREFIX}", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "route", "add", "default", "via", HOST_IP)
        yield {learner: netns_name(learner) for learner in LEARNERS}
    finally:
        remove_class_net()


@pytest.fixture(scope="session")
def own_cluster(class_net, figures) -> Iterator[OwnCluster]:
    if shutil.which("docker") is None:
        pytest.fail("docker not found: this suite needs docker and kind (make up)")
    kind = tool("kind")
    tags = pushed_tags()
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="workerlab-multi-") as tmp:
        kubeconfig = str(Path(tmp) / "kubeconfig")
        env = dict(os.environ, KUBECONFIG=kubeconfig)
        env["PATH"] = os.pathsep.join([str(CACHE / "bin"), str(Path(sys.executable).parent)])
        env["PATH"] += os.pathsep + os.environ.get("PATH", "")
        env.pop("WORKERLAB_KUBE_CONTEXT", None)
        cluster = OwnCluster(kubeconfig, tags, env, tool("kubectl"), tool("helm"))
        # A leftover from an interrupted run would make `kind create` fail.
        if NAME in run(kind, "get", "clusters", timeout=60).split():
            run(kind, "delete", "cluster", "--name", NAME, "--kubeconfig", kubeconfig)
        image = node_image()
        started = time.monotonic()
        try:
            run(kind, "create", "cluster", "--name", NAME, "--image", image,
                "--config", str(kind_config(Path(tmp))), "--kubeconfig", kubeconfig,
                "--wait", "240s", timeout=420)  # fmt: skip
            timings["create_cluster_s"] = time.monotonic() - started
            run("bash", str(REPO / "hack" / "registry.sh"), "connect", NAME, env=env)
            mark = time.monotonic()
            # The only install step, as on an instructor's cluster: the chart, images pulled.
            cluster.helm(
                "install", "workerlab", str(REPO / "charts" / "workerlab"),
                "--namespace", "workerlab-system", "--create-namespace",
                *cluster.install_args(), "--wait", "--timeout", "300s",
            )  # fmt: skip
            timings["helm_install_s"] = time.monotonic() - mark
            yield cluster
        finally:
            mark = time.monotonic()
            subprocess.run(
                [kind, "delete", "cluster", "--name", NAME, "--kubeconfig", kubeconfig],
                capture_output=True,
                timeout=300,
                check=False,
            )
            timings["delete_cluster_s"] = time.monotonic() - mark
            timings["total_s"] = time.monotonic() - started
            figures("own-cluster", node_image=image, tags=tags,
                    **{k: round(v, 1) for k, v in timings.items()})  # fmt: skip
            leftover = run(kind, "get", "clusters", timeout=60).split()
            assert NAME not in leftover, f"kind cluster {NAME} was not deleted"
