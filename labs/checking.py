"""What every checker is made of: facts gathered from the real world, then a pure verdict.

`gather(ctx)` does the I/O (kubectl, HTTP, the journal, /proc) and returns plain data;
`evaluate(facts)` turns that data into check items with a hint for each failure. Only the
second half has logic worth unit-testing, and it needs no cluster to test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from workerlab.api.objects import epoch, event_time
from workerlab.common import journal
from workerlab.common.kube import Kube


@dataclass(frozen=True)
class Item:
    name: str
    passed: bool
    detail: str = ""
    hint: str = ""


def item(name: str, passed: object, detail: str = "", hint: str = "") -> Item:
    """`passed` may be the evidence itself (runs, pids): it passes when non-empty."""
    return Item(name, bool(passed), detail, "" if passed else hint)


@dataclass
class CheckContext:
    kube: Kube
    started_at: float | None = None  # when `workerlab lab reset N` ran, if it did
    options: dict[str, Any] = field(default_factory=dict)

    def runs(self) -> list[dict]:
        """The learner's load runs since the lab began: from the local journal, or the ones a
        recorded pass carried (`workerlab class check`, `options["runs"]`)."""
        recorded = self.options.get("runs")
        if isinstance(recorded, list):
            since = self.started_at or 0
            return [r for r in recorded if isinstance(r, dict) and r.get("started_at", 0) >= since]
        return journal.load_runs(since=self.started_at)


@dataclass(frozen=True)
class Evidence:
    """What the cluster keeps of a recorded pass once the learner has moved on: the Events of
    their namespace between the lab's start and the pass, and the load runs the pass recorded.

    The Events are the controllers' (the operator's, the HPA's, the kubelet's): a learner's Role
    may read Events but never write them. The API server keeps them for its --event-ttl (1 h by
    default), so a pass is re-judged from them within about an hour.
    """

    started_at: float
    passed_at: float
    events: list[dict]
    runs: list[dict]

    def of(self, kind: str, name: str | None = None, reason: str | None = None) -> list[dict]:
        """The window's Events about objects of `kind` (and `name`), with `reason`, in order."""
        found = []
        for event in self.events:
            about = event.get("involvedObject") or {}
            if about.get("kind") != kind or (name is not None and about.get("name") != name):
                continue
            if reason is None or event.get("reason") == reason:
                found.append(event)
        return found


# The window is the lab's: from the recorded start (the reset's own changes, demo's rollout back
# to the starting spec, end before `lab reset` records it) to the recorded pass, plus the
# Events' one-second resolution (the next lab's reset, right after the pass, is not this lab's).
SLACK_SECONDS = 1.0


def gather_evidence(kube: Kube, started_at: float, passed_at: float, runs: list) -> Evidence:
    events = kube.json("get", "events").get("items", [])
    low, high = math.floor(started_at), passed_at + SLACK_SECONDS
    window = [e for e in events if any(low <= t <= high for t in _happened(e))]
    recorded = [r for r in runs if isinstance(r, dict) and r.get("started_at", 0) >= started_at]
    return Evidence(started_at, passed_at, sorted(window, key=event_time), recorded)


def _happened(event: dict) -> list[float]:
    """When an Event happened: first and last time (a repeated Event is one object, counted)."""
    stamps = (event.get("firstTimestamp"), event_time(event))
    return [t for t in (epoch(s) for s in stamps if s) if t is not None]


@dataclass(frozen=True)
class Checker:
    gather: Callable[[CheckContext], dict]
    evaluate: Callable[[dict], list[Item]]
    reset: Callable[[CheckContext], list[str]]
    # Re-judges a recorded pass from what the cluster kept (`Evidence`), for labs whose result
    # the next lab's reset undoes: `workerlab class check` uses it once the learner moved on.
    audit: Callable[[Evidence], list[Item]] | None = None


def counts(mapping: dict) -> str:
    """`{'demo-a': 3, 'demo-b': 2}` as `demo-a 3, demo-b 2`: check output is read by people."""
    return ", ".join(f"{key} {value}" for key, value in mapping.items()) or "none"


def listing(values: Iterable[object]) -> str:
    """Values as `a, b`, never as a Python list's repr."""
    return ", ".join(str(value) for value in values) or "none"


def run_matches(run: dict, *, path_prefix: str | None = None, method: str | None = None) -> bool:
    if path_prefix is not None and not str(run.get("path", "")).startswith(path_prefix):
        return False
    return method is None or run.get("method", "GET").upper() == method.upper()


def run_port(run: dict) -> int | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(run.get("base_url", "")).port
    except ValueError:
        return None
