"""The kopf-peering reference: a minimal kopf operator, run twice with kopf's defaults (peering
on, keep-alive lifetime 60 s) and two priorities. It answers a ConfigMap's `ping` with a `pong`
naming itself, so the bench can time when the standby starts acting. Not the workerlab operator:
that one's pods-from-informers design does not pause with kopf's peering (docs/operator.md)."""

from __future__ import annotations

import os
from typing import Any

import kopf

ME = os.environ.get("PEER_NAME", "peer")


@kopf.on.event("", "v1", "configmaps", labels={"workerlab.dev/failover-bench": "ping"})
def answer(body: Any, patch: kopf.Patch, **_: Any) -> None:
    data = body.get("data") or {}
    if data.get("ping") and data.get("pong") != f"{data['ping']} {ME}":
        patch.setdefault("data", {})["pong"] = f"{data['ping']} {ME}"
