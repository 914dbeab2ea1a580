"""Settings from the environment: defaults, validation, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from workerlab.worker.config import (
    BALANCE_MODES,
    DEFAULT_BALANCE,
    ENV_VARS,
    ConfigError,
    Settings,
)


def settings(**env: str) -> Settings:
    return Settings.from_env(env, cpus=lambda: 3)


def test_defaults():
    s = settings()
    assert s.processes == 3  # the container's CPUs, not a constant
    assert (s.port, s.graceful_timeout, s.worker_timeout, s.max_requests) == (8000, 20, 10, 0)
    assert s.drain_delay == 2.0
    assert s.balance == DEFAULT_BALANCE
    assert s.lab_mode is False and s.redis_url is None and s.state_dir is None
    assert s.pod_name  # the hostname when POD_NAME is unset


def test_values_are_read():
    s = settings(
        WORKER_PROCESSES="4",
        PORT="9000",
        GRACEFUL_TIMEOUT="5",
        DRAIN_DELAY="0.5",
        WORKER_TIMEOUT="0",
        MAX_REQUESTS="100",
        WORKERLAB_LAB_MODE="TRUE",
        REDIS_URL="redis://redis:6379/0",
        POD_NAME="demo-abc",
        WORKERLAB_STATE_DIR="/tmp/x",
    )
    assert (s.processes, s.port, s.graceful_timeout, s.drain_delay) == (4, 9000, 5, 0.5)
    assert (s.worker_timeout, s.max_requests, s.lab_mode) == (0, 100, True)
    assert (s.redis_url, s.pod_name, s.state_dir) == (
        "redis://redis:6379/0",
        "demo-abc",
        Path("/tmp/x"),
    )


@pytest.mark.parametrize("raw", ["1", "true", "yes", "on", " True "])
def test_lab_mode_truthy(raw):
    assert settings(WORKERLAB_LAB_MODE=raw).lab_mode is True


@pytest.mark.parametrize("raw", ["0", "false", "no", "off", ""])
def test_lab_mode_falsy(raw):
    assert settings(WORKERLAB_LAB_MODE=raw).lab_mode is False


def test_empty_values_mean_default():
    assert settings(PORT="", WORKER_PROCESSES=" ").port == 8000


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("WORKER_PROCESSES", "0"),
        ("WORKER_PROCESSES", "two"),
        ("PORT", "0"),
        ("PORT", "65536"),
        ("GRACEFUL_TIMEOUT", "-1"),
        ("DRAIN_DELAY", "nan"),
        ("WORKER_TIMEOUT", "1.5"),
        ("MAX_REQUESTS", "-5"),
        ("WORKERLAB_LAB_MODE", "maybe"),
        ("REDIS_URL", "localhost:6379"),
        ("REDIS_URL", "http://redis"),
        ("BALANCE", "roundrobin"),
    ],
)
def test_invalid_values_name_the_variable_in_one_line(name, raw):
    with pytest.raises(ConfigError) as error:
        settings(**{name: raw})
    message = str(error.value)
    assert name in message and "\n" not in message


def test_every_env_var_is_documented():
    documented = {name for name, _, _ in ENV_VARS}
    assert documented >= {
        "WORKER_PROCESSES", "PORT", "GRACEFUL_TIMEOUT", "WORKER_TIMEOUT", "MAX_REQUESTS",
        "WORKERLAB_LAB_MODE", "REDIS_URL", "POD_NAME", "WORKERLAB_STATE_DIR", "DRAIN_DELAY",
        "BALANCE",
    }  # fmt: skip


@pytest.mark.parametrize("raw", ["shared", "reuseport", " ReusePort "])
def test_balance_modes(raw):
    assert settings(BALANCE=raw).balance == raw.strip().lower()
    assert settings(BALANCE=raw).balance in BALANCE_MODES
