"""The pod's shared state directory: one record per process, and the draining flag.

Processes forked by the arbiter share no memory, so they tell each other about themselves
through files: each process rewrites its own `processes/<pid>.json`, the arbiter marks a record
dead when it reaps the process, and `GET /processes` in any process reads them all.

    <state_dir>/processes/<pid>.json   {"pid","index","requests_served","in_flight",
                                        "control_served",...}
    <state_dir>/metrics/               prometheus_client multiprocess files
    <state_dir>/draining               exists once the arbiter got SIGTERM: every /readyz says 503
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from workerlab.api.processes import ProcessRecord

KEEP_DEAD_RECORDS = 10  # enough to show a learner what was replaced, bounded for long runs


@dataclass
class ProcessIdentity:
    """Who this process is, as the arbiter forked it."""

    index: int = 0  # slot 0..N-1, reused by the replacement of a dead process
    generation: int = 0  # gunicorn's worker age: 1 for the first fork, +1 for every fork after
    arbiter_pid: int | None = None
    pid: int = field(default_factory=os.getpid)
    started_at: float = field(default_factory=time.time)
    started_monotonic: float = field(default_factory=time.monotonic)

    def uptime(self) -> float:
        return time.monotonic() - self.started_monotonic


# Set by the arbiter's post_fork hook in the child, read by the app it then loads.
current = ProcessIdentity()


def set_current(identity: ProcessIdentity) -> None:
    global current
    current = identity


class StateDir:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.processes = self.root / "processes"
        self.metrics = self.root / "metrics"
        self.draining_flag = self.root / "draining"

    def prepare(self) -> None:
        """Create the layout and forget a previous run (an emptyDir survives container restarts)."""
        for directory in (self.processes, self.metrics):
            directory.mkdir(parents=True, exist_ok=True)
            for stale in directory.iterdir():
                with contextlib.suppress(OSError):
                    stale.unlink()
        with contextlib.suppress(FileNotFoundError):
            self.draining_flag.unlink()

    # --- readiness -------------------------------------------------------------------------
    def mark_draining(self) -> None:
        self.draining_flag.touch()

    def is_draining(self) -> bool:
        return self.draining_flag.exists()

    # --- process records -------------------------------------------------------------------
    def write_record(
        self,
        identity: ProcessIdentity,
        requests_served: int,
        in_flight: int = 0,
        control_served: int = 0,
    ) -> None:
        record = ProcessRecord(
            pid=identity.pid,
            index=identity.index,
            generation=identity.generation,
            started_at=identity.started_at,
            requests_served=requests_served,
            in_flight=in_flight,
            control_served=control_served,
            alive=True,
        )
        self._write(self.processes / f"{identity.pid}.json", record.to_dict())

    def mark_dead(self, pid: int, exit_description: str) -> None:
        """Called by the arbiter after it reaped `pid`."""
        path = self.processes / f"{pid}.json"
        known = _read(path)
        before = ProcessRecord.from_dict(known) if known else ProcessRecord(pid=pid)
        # What it was serving when it died is gone with it (the clients saw a reset).
        dead = replace(
            before, alive=False, in_flight=0, exited_at=time.time(), exit=exit_description
        )
        self._write(path, dead.to_dict())
        self._prune_dead()

    def read_records(self) -> list[ProcessRecord]:
        records = []
        for path in sorted(self.processes.glob("*.json")):
            if (raw := _read(path)) is not None:
                record = ProcessRecord.from_dict(raw)
                records.append(replace(record, alive=record.alive and _pid_exists(record.pid)))
        # Live processes first, by slot; then the dead, most recent first.
        records.sort(
            key=lambda r: (not r.alive, (r.index or 0) if r.alive else -(r.exited_at or 0))
        )
        return records

    def _prune_dead(self) -> None:
        dead = [r for r in self.read_records() if not r.alive]
        for record in dead[KEEP_DEAD_RECORDS:]:
            with contextlib.suppress(OSError):
                (self.processes / f"{record.pid}.json").unlink()

    @staticmethod
    def _write(path: Path, record: dict) -> None:
        # Readers must never see half a file: write aside, then rename over.
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)


def _read(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("pid"), int) else None


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
