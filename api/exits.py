"""How a forked process ended, as its arbiter saw it: the `exit` of a `/processes` record.

The worker writes one of these descriptions; `workerlab status` shows its short label, so a
process the arbiter removed on purpose never looks like one it killed for hanging.
"""

from __future__ import annotations

EXITED = "exited (reaped by the arbiter)"  # crashed or returned; a replacement takes its slot
REMOVED = "removed by the arbiter: one process more than it now runs (TTOU, or a reload)"
TIMED_OUT = "timed out: no heartbeat for WORKER_TIMEOUT seconds, so the arbiter killed it"

SHORT_LABELS = {EXITED: "exited", REMOVED: "removed (TTOU or reload)", TIMED_OUT: "timed out"}


def how_it_ended(*, timed_out: bool, surplus: bool) -> str:
    """The description for a reaped process. `timed_out`: the arbiter's watchdog aborted it;
    `surplus`: after it left, the arbiter still has as many processes as it wants."""
    if timed_out:
        return TIMED_OUT
    if surplus:
        return REMOVED
    return EXITED


def short_label(description: str | None) -> str:
    """What the process table shows for a dead process (an unknown description is shown whole)."""
    if not description:
        return "exited"
    return SHORT_LABELS.get(description, description)
