"""A revoked kubeconfig token shows at once: the source's auth probe (and any watch) turns the API
server's 401/403 into health `auth` False with the server's message, and back when it answers
again. The API server is httpx's MockTransport behind the address `kubectl proxy` would have."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from workerlab.cli.dashboard import source as source_module
from workerlab.cli.dashboard.model import Model
from workerlab.cli.dashboard.source import NotAuthorised, Source, refusal

UNAUTHORIZED = {"kind": "Status", "status": "Failure", "message": "Unauthorized", "code": 401}


class FakeKube:
    namespace = "learner-1"
    context = "class"


class ApiServer:
    def __init__(self) -> None:
        self.status = 200
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status != 200:
            return httpx.Response(self.status, json=UNAUTHORIZED | {"code": self.status})
        return httpx.Response(200, json={"items": [], "metadata": {"resourceVersion": "1"}})


def source_on(api: ApiServer) -> tuple[Source, list[int]]:
    model = Model("learner-1")
    notified: list[int] = []
    src = Source(FakeKube(), model, lambda: notified.append(1))  # type: ignore[arg-type]
    src.client = httpx.AsyncClient(transport=httpx.MockTransport(api))
    src.proxy.base = "http://127.0.0.1:1"
    src.proxy._ready.set()
    return src, notified


async def probe_until(src: Source, done, timeout: float = 2.0) -> None:
    task = asyncio.create_task(src._probe_auth())
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not done():
            assert asyncio.get_running_loop().time() < deadline, src.model.health
            await asyncio.sleep(0.01)
    finally:
        src.stop.set()
        await task


def test_refusal_keeps_the_api_servers_words():
    error = refusal(401, json.dumps(UNAUTHORIZED))
    assert isinstance(error, NotAuthorised)
    assert str(error) == "HTTP 401 Unauthorized: Unauthorized"
    assert str(refusal(403, "plain text")) == "HTTP 403 Forbidden: plain text"


@pytest.mark.parametrize("status", [401, 403])
def test_a_revoked_token_turns_auth_false_within_a_probe(monkeypatch, status):
    monkeypatch.setattr(source_module, "AUTH_PROBE_S", 0.01)

    async def scenario() -> None:
        api = ApiServer()
        src, _ = source_on(api)
        health = src.model.health
        await probe_until(src, lambda: health.get("auth") is True)
        api.status = status  # `workerlab class remove`
        src.stop.clear()
        await probe_until(src, lambda: health.get("auth") is False)
        assert f"HTTP {status}" in health["auth_error"]
        assert any("not authorised" in e.message for e in src.model.timeline)
        api.status = 200
        src.stop.clear()
        await probe_until(src, lambda: health.get("auth") is True)
        assert health["auth_error"] is None
        assert "authorised again" in src.model.timeline[-1].message
        probe = api.requests[0]
        assert probe.url.path == "/apis/workerlab.dev/v1alpha1/namespaces/learner-1/workerclusters"
        assert probe.url.params["limit"] == "1"
        await src.client.aclose()

    asyncio.run(scenario())


def test_a_watch_refused_with_401_says_not_authorised(monkeypatch):
    async def scenario() -> None:
        api = ApiServer()
        api.status = 401
        src, _ = source_on(api)
        task = asyncio.create_task(src._watch("wc"))
        for _ in range(200):
            if src.model.health.get("auth") is False:
                break
            await asyncio.sleep(0.01)
        src.stop.set()
        await task
        assert src.model.health["auth"] is False
        assert src.model.health["cluster"] is False
        assert "HTTP 401 Unauthorized" in src.model.health["cluster_error"]
        await src.client.aclose()

    asyncio.run(scenario())
