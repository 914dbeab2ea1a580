"""`workerlab class`: learner names and what is named after them (namespace, context, file),
and the token lifetime. Pure: checked before anything reaches a cluster."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from workerlab.api.resource import CLASS_CONTEXT_PREFIX, LEARNER_NAMESPACE_PREFIX
from workerlab.common.errors import WorkerlabError

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_NAME = 63 - len(LEARNER_NAMESPACE_PREFIX)
DEFAULT_OUT = Path("class")
DEFAULT_DURATION = "12h"
DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+s)?$")
MIN_DURATION_S = 600  # the API server refuses shorter TokenRequests


def namespace_of(name: str) -> str:
    return f"{LEARNER_NAMESPACE_PREFIX}{name}"


def context_of(name: str) -> str:
    return f"{CLASS_CONTEXT_PREFIX}{name}"


def kubeconfig_path(out_dir: Path, name: str) -> Path:
    return out_dir / f"{name}.kubeconfig"


def validate_names(names: Iterable[str]) -> list[str]:
    """The names, each a DNS label short enough for `learner-NAME`; every problem in one error."""
    found = list(names)
    if not found:
        raise WorkerlabError("give at least one learner name", hint="workerlab class add ada bob")
    problems = []
    for name in found:
        if not DNS_LABEL.match(name) or len(name) > MAX_NAME:
            problems.append(
                f"{name!r} is not a valid learner name (a DNS label: lowercase letters, digits "
                f"and '-', starting and ending with a letter or digit, at most {MAX_NAME} chars)"
            )
    dupes = sorted({n for n in found if found.count(n) > 1})
    if dupes:
        problems.append(f"named more than once: {', '.join(dupes)}")
    if problems:
        raise WorkerlabError("; ".join(problems))
    return found


def duration_seconds(text: str) -> int:
    """'12h', '90m', '1h30m' -> seconds; at least 10 minutes (the API server's minimum)."""
    match = DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise WorkerlabError(f"--duration {text!r} is not a duration like 12h, 90m or 1h30m")
    units = {"h": 3600, "m": 60, "s": 1}
    total = sum(int(part[:-1]) * units[part[-1]] for part in match.groups() if part)
    if total < MIN_DURATION_S:
        raise WorkerlabError(f"--duration {text!r} is too short: at least 10m")
    return total
