"""The entry point without starting the arbiter: --help and configuration errors."""

from __future__ import annotations

import types

import pytest

from workerlab.worker import arbiter, siblings
from workerlab.worker.__main__ import main
from workerlab.worker.config import ENV_VARS, Settings


def test_help_documents_every_env_var(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, _, _ in ENV_VARS:
        assert name in out


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        ([], {"WORKER_PROCESSES": "lots"}),
        ([], {"PORT": "-1"}),
        (["--bind", "nowhere"], {}),
        (["--bind", "127.0.0.1:99999"], {}),
    ],
)
def test_bad_configuration_exits_2_without_starting(monkeypatch, capsys, argv, env):
    for name, _, _ in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(
        arbiter.WorkerApplication, "run", lambda self: pytest.fail("must not start")
    )
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unknown_option_is_a_usage_error():
    assert main(["--no-such-option"]) == 2


def test_pre_fork_reuses_the_lowest_free_slot():
    def worker(index=None):
        w = types.SimpleNamespace()
        if index is not None:
            w.workerlab_index = index
        return w

    server = types.SimpleNamespace(WORKERS={11: worker(0), 13: worker(2)})
    new = worker()
    arbiter.WorkerApplication._pre_fork(server, new)
    assert new.workerlab_index == 1
    server.WORKERS[14] = new
    newest = worker()
    arbiter.WorkerApplication._pre_fork(server, newest)
    assert newest.workerlab_index == 3


def test_post_fork_sets_the_identity(monkeypatch):
    monkeypatch.setattr(siblings, "current", siblings.current)
    w = types.SimpleNamespace(workerlab_index=2, age=7)
    arbiter.WorkerApplication._post_fork(types.SimpleNamespace(pid=4242), w)
    assert (siblings.current.index, siblings.current.generation) == (2, 7)
    assert siblings.current.arbiter_pid == 4242


def test_heartbeat_worker_is_the_default():
    assert arbiter.DEFAULT_WORKER_CLASS == "uvicorn"
    assert arbiter.WORKER_CLASSES["uvicorn"].endswith("HeartbeatUvicornWorker")


@pytest.mark.parametrize(("balance", "reuse_port"), [("shared", False), ("reuseport", True)])
def test_balance_maps_to_gunicorn_reuse_port(tmp_path, balance, reuse_port):
    settings = Settings.from_env(
        {"BALANCE": balance, "WORKERLAB_STATE_DIR": str(tmp_path)}, cpus=lambda: 2
    )
    application = arbiter.WorkerApplication(settings, bind="127.0.0.1:1")
    assert application.cfg.reuse_port is reuse_port


def test_help_explains_both_balance_modes(capsys):
    main(["--help"])
    out = capsys.readouterr().out
    assert "BALANCE" in out and "reuseport" in out and "SO_REUSEPORT" in out
