"""What every checker is made of: facts gathered from the real world, then a pure verdict.

`gather(ctx)` does the I/O (kubectl, HTTP, the journal, /proc) and returns plain data;
`evaluate(facts)` turns that data into check items with a hint for each failure. Only the
second half has logic worth unit-testing, and it needs no cluster to test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

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
class Checker:
    gather: Callable[[CheckContext], dict]
    evaluate: Callable[[dict], list[Item]]
    reset: Callable[[CheckContext], list[str]]


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
