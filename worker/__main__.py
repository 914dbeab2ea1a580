"""Entry point: `python -m workerlab.worker` / `workerlab worker` starts the pod's arbiter."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

from workerlab.worker.arbiter import DEFAULT_WORKER_CLASS, WORKER_CLASSES
from workerlab.worker.config import ENV_VARS, ConfigError, Settings
from workerlab.worker.siblings import StateDir

# how the worker was started, for --help and errors; the console script passes its own name
PROG = "python -m workerlab.worker"


def _parser(prog: str) -> argparse.ArgumentParser:
    width = max(len(name) for name, _, _ in ENV_VARS)
    env_help = "\n".join(
        f"  {name:<{width}}  {meaning} (default: {default})" for name, default, meaning in ENV_VARS
    )
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Start gunicorn's arbiter: it binds the port once and forks WORKER_PROCESSES "
            "processes that share the socket, each serving the workerlab FastAPI app, and "
            "forks a replacement whenever one dies."
        ),
        epilog=f"environment variables:\n{env_help}\n\n"
        "Invalid values are reported in one line and the exit code is 2.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--bind",
        metavar="HOST:PORT",
        help="address to listen on (default: 0.0.0.0:$PORT)",
    )
    parser.add_argument(
        "--worker-class",
        choices=sorted(WORKER_CLASSES),
        default=DEFAULT_WORKER_CLASS,
        help=f"ASGI worker implementation (default: {DEFAULT_WORKER_CLASS}, chosen by measurement)",
    )
    parser.add_argument(
        "--access-log", action="store_true", help="log every request to stderr (default: off)"
    )
    return parser


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    parser = _parser(prog)
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:  # --help, or a usage error argparse already explained
        return int(exit_.code or 0)

    try:
        settings = Settings.from_env()
        bind = args.bind or f"0.0.0.0:{settings.port}"
        _check_bind(bind)
        owns_state_dir = settings.state_dir is None
        state_root = settings.state_dir or Path(tempfile.mkdtemp(prefix="workerlab-"))
        state = StateDir(state_root)
        state.prepare()
    except ConfigError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{prog}: error: state dir unusable: {error}", file=sys.stderr)
        return 2

    settings = dataclasses.replace(settings, state_dir=state_root)
    # Every forked process inherits these: prometheus_client reads the first when imported.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(state.metrics)
    os.environ["POD_NAME"] = settings.pod_name

    from workerlab.worker.arbiter import WorkerApplication

    WorkerApplication(
        settings,
        bind=bind,
        worker_class=args.worker_class,
        access_log=args.access_log,
        owns_state_dir=owns_state_dir,
    ).run()
    return 0  # not reached: the arbiter leaves through sys.exit with its own status


def _check_bind(bind: str) -> None:
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--bind {bind!r} is not HOST:PORT")


if __name__ == "__main__":
    sys.exit(main())
