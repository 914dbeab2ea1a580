"""Worker settings, read once from the environment and validated before anything forks."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from workerlab.worker.cpus import available_cpus

# Upper bounds of the work endpoints. CPU work blocks the process's event loop, so it must stay
# well below WORKER_TIMEOUT or the arbiter would take a slow request for a hung process.
MAX_CPU_MS = 5_000
MAX_IO_MS = 30_000
MAX_LEAK_MB = 1_024
MAX_PROCESSES = 256

# How connections reach the processes (see docs/worker.md, "Balancing: measured"):
#   shared     the arbiter binds one socket, every forked process accepts from it; the kernel
#              wakes one idle process per new connection, in turn (worker/accept.py): even
#              shares on a busy node, a busy process takes none, and a retired process leaves
#              the queue to the others.
#   reuseport  each process binds its own SO_REUSEPORT socket after the fork: the kernel hashes
#              every new connection to one of them, busy or not; connections queued on a
#              process's socket are reset when that process exits (retired, replaced).
BALANCE_MODES = ("shared", "reuseport")
DEFAULT_BALANCE = "shared"

# (name, default shown in --help, meaning) — the single source for --help and docs/worker.md.
ENV_VARS: tuple[tuple[str, str, str], ...] = (
    ("WORKER_PROCESSES", "CPUs this container may use", "processes the arbiter forks"),
    (
        "WORKER_PROCESSES_FILE",
        "(unset)",
        "a file holding the process count (the operator's pod annotation, through the downward "
        "API): read at start and followed 4 times a second, it wins over WORKER_PROCESSES",
    ),
    ("PORT", "8000", "TCP port, bound on 0.0.0.0 (--bind overrides)"),
    (
        "BALANCE",
        DEFAULT_BALANCE,
        "shared: one socket all processes accept from, each connection to one idle process "
        "in turn; reuseport: one SO_REUSEPORT socket per process (the kernel hashes "
        "connections over them, busy or not; a process that exits resets its queue)",
    ),
    ("GRACEFUL_TIMEOUT", "20", "seconds in-flight requests get to finish after SIGTERM"),
    ("DRAIN_DELAY", "2", "seconds between SIGTERM (readiness -> 503) and closing the socket"),
    ("WORKER_TIMEOUT", "10", "seconds without a heartbeat before the arbiter kills a process"),
    ("MAX_REQUESTS", "0", "recycle a process after this many requests (0 = never)"),
    ("WORKERLAB_LAB_MODE", "false", "true/1 enables POST /crash, /hang and /leak"),
    ("REDIS_URL", "(unset)", "redis://host:6379/0 shares /counter across processes and pods"),
    ("POD_NAME", "hostname", "pod name reported by / and /processes (downward API)"),
    ("WORKERLAB_STATE_DIR", "fresh dir under $TMPDIR", "per-pod dir for /processes and metrics"),
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """An environment value is invalid; the message is one line meant for the user."""


@dataclass(frozen=True)
class Settings:
    processes: int
    processes_file: Path | None  # followed at run time (arbiter.DrainingArbiter)
    port: int
    balance: str
    graceful_timeout: int
    drain_delay: float
    worker_timeout: int
    max_requests: int
    lab_mode: bool
    redis_url: str | None
    pod_name: str
    state_dir: Path | None  # None: the entry point creates a fresh one

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        cpus: Callable[[], int] = available_cpus,
    ) -> Settings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name)
            return None if value is None or value.strip() == "" else value.strip()

        processes = get("WORKER_PROCESSES")
        state_dir = get("WORKERLAB_STATE_DIR")
        count_file = get("WORKER_PROCESSES_FILE")
        count = _int("WORKER_PROCESSES", processes, 1, 1, MAX_PROCESSES) if processes else None
        if count_file:
            count = read_processes_file(Path(count_file)) or count
        return cls(
            processes=count or cpus(),
            processes_file=Path(count_file) if count_file else None,
            port=_int("PORT", get("PORT"), 8000, 1, 65535),
            balance=_choice("BALANCE", get("BALANCE"), DEFAULT_BALANCE, BALANCE_MODES),
            graceful_timeout=_int("GRACEFUL_TIMEOUT", get("GRACEFUL_TIMEOUT"), 20, 1, 3600),
            drain_delay=_float("DRAIN_DELAY", get("DRAIN_DELAY"), 2.0, 0.0, 300.0),
            worker_timeout=_int("WORKER_TIMEOUT", get("WORKER_TIMEOUT"), 10, 0, 3600),
            max_requests=_int("MAX_REQUESTS", get("MAX_REQUESTS"), 0, 0, 10**9),
            lab_mode=_bool("WORKERLAB_LAB_MODE", env.get("WORKERLAB_LAB_MODE", "")),
            redis_url=_redis_url(get("REDIS_URL")),
            pod_name=get("POD_NAME") or socket.gethostname(),
            state_dir=Path(state_dir) if state_dir else None,
        )


def read_processes_file(path: Path) -> int | None:
    """The count in WORKER_PROCESSES_FILE; None while the file is missing or empty (the
    annotation not there yet). Anything else not a count is a ConfigError."""
    try:
        raw = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConfigError(f"WORKER_PROCESSES_FILE {path}: {error.strerror}") from None
    if not raw:
        return None
    return _int(f"WORKER_PROCESSES_FILE {path}: the count", raw, 1, 1, MAX_PROCESSES)


def _int(name: str, raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer (expected {low}..{high})") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} is out of range (expected {low}..{high})")
    return value


def _float(name: str, raw: str | None, default: float, low: float, high: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number (expected {low:g}..{high:g})") from None
    if not low <= value <= high:  # also rejects nan
        raise ConfigError(f"{name}={raw!r} is out of range (expected {low:g}..{high:g})")
    return value


def _choice(name: str, raw: str | None, default: str, choices: tuple[str, ...]) -> str:
    if raw is None:
        return default
    value = raw.lower()
    if value not in choices:
        raise ConfigError(f"{name}={raw!r} is not one of {', '.join(choices)}")
    return value


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (expected true/false/1/0)")


def _redis_url(raw: str | None) -> str | None:
    if raw is None:
        return None
    parsed = urlparse(raw)
    if parsed.scheme not in {"redis", "rediss", "unix"} or not (parsed.hostname or parsed.path):
        raise ConfigError(f"REDIS_URL={raw!r} is not a redis:// rediss:// or unix:// URL")
    return raw
