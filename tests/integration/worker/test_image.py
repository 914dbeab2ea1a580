"""The worker image as built by `make images` (no registry): it runs as non-root on a read-only
root filesystem and answers `/` in a plain `docker run`.

Needs a running docker engine and the image workerlab/worker:dev (`make up` or `make images`
build both); without them the test fails and says so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import httpx
import pytest

pytestmark = pytest.mark.integration

IMAGE = "workerlab/worker:dev"


def docker(*args: str, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


@pytest.fixture
def container():
    if shutil.which("docker") is None:
        pytest.fail("docker is not installed: run `make up` (it installs and starts docker)")
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode:
        pytest.fail(f"image {IMAGE} is missing: run `make images`")
    cid = docker(
        "run", "-d", "--read-only", "--tmpfs", "/tmp", "-e", "WORKER_PROCESSES=2",
        "-p", "127.0.0.1::8000", IMAGE,
    )  # fmt: skip
    try:
        yield cid
    finally:
        docker("rm", "-f", cid, check=False)


def test_image_serves_hello_as_non_root_on_a_read_only_root(container):
    host_port = docker("port", container, "8000/tcp").splitlines()[0].rsplit(":", 1)[1]
    deadline = time.monotonic() + 30
    while True:
        try:
            hello = httpx.get(f"http://127.0.0.1:{host_port}/", timeout=2).json()
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                logs = docker("logs", container, check=False)
                pytest.fail(f"the container never answered / within 30 s; logs:\n{logs}")
            time.sleep(0.3)
    assert hello["message"] == "Hello from Worker!"
    config = json.loads(docker("inspect", container))[0]["Config"]
    assert config["User"] == "10001:10001"
    assert docker("exec", container, "id", "-u") == "10001"
    # Nothing outside /tmp is writable: the pod spec runs it with readOnlyRootFilesystem.
    assert (
        "Read-only file system"
        in subprocess.run(
            ["docker", "exec", container, "touch", "/opt/probe"], capture_output=True, text=True
        ).stderr
    )
