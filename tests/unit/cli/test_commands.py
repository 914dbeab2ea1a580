"""The CLI's contract: --help with an example everywhere, one-line errors, exit codes."""

import pytest
from typer.testing import CliRunner

from workerlab.cli import targets
from workerlab.cli.commands import lab as lab_commands
from workerlab.cli.main import app
from workerlab.common import journal
from workerlab.common.errors import WorkerlabError

runner = CliRunner()

COMMANDS = [
    ["worker"],
    ["operator"],
    ["up"],
    ["down"],
    ["status"],
    ["load"],
    ["chaos", "kill-pod"],
    ["chaos", "kill-process"],
    ["lab", "list"],
    ["lab", "show"],
    ["lab", "check"],
    ["lab", "reset"],
    ["class", "add"],
    ["class", "remove"],
    ["class", "list"],
    ["class", "status"],
    ["class", "check"],
]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No kubectl, no lab cluster, a private lab home: nothing here touches the real world."""
    monkeypatch.setenv("WORKERLAB_LAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WORKERLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))


def invoke(*args):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(command):
    if command[0] in ("worker", "operator"):
        # these pass their arguments through to the component: read their docstring instead
        cmd = next(c for c in app.registered_commands if c.callback.__name__ == command[0])
        assert "Example:" in cmd.callback.__doc__
        return
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output


def test_missing_kubectl_is_one_line_and_exit_2():
    result = invoke("status")
    assert result.exit_code == 2
    assert "kubectl not found" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["lab", "show", "13"],
        ["lab", "check", "0"],
        ["load", "http://10.0.0.1/"],
        ["load", "ftp://127.0.0.1/"],
        ["load", "http://127.0.0.1:1/", "-H", "no-colon"],
        ["load", "http://127.0.0.1:1/", "--requests", "0"],
        ["chaos", "kill-pod", "demo"],
        ["status", "--wait", "5"],
    ],
    ids=lambda a: " ".join(a),
)
def test_usage_errors_exit_2_without_traceback(args):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_lab_list_and_show():
    listing = invoke("lab", "list")
    assert listing.exit_code == 0 and "Failure drills" in listing.output
    shown = invoke("lab", "show", "1", "--raw")
    assert shown.exit_code == 0 and "## Steps" in shown.output


def test_local_lab_check_fails_with_hints_and_exit_1():
    result = invoke("lab", "check", "1")
    assert result.exit_code == 1
    assert "FAIL" in result.output and "hint:" in result.output


def test_load_against_nothing_counts_errors_and_exits_1():
    # port 9 (discard) is closed on loopback: every request is a connect error, quickly
    result = invoke(
        "load", "http://127.0.0.1:9/", "--requests", "3", "--concurrency", "1", "--json"
    )
    assert result.exit_code == 1
    assert '"connect": 3' in result.output


def test_targets():
    assert targets.parse_url("127.0.0.1:30080").base_url == "http://127.0.0.1:30080/"
    assert targets.split_url_path("http://127.0.0.1:1/work/cpu?ms=5") == (
        "http://127.0.0.1:1",
        "/work/cpu?ms=5",
    )
    assert targets.split_url_path("wc/demo") == ("wc/demo", None)
    assert targets.node_port_url({"spec": {"service": {"type": "NodePort", "nodePort": 30080}}})
    assert targets.node_port_url({"spec": {"service": {"type": "ClusterIP"}}}) is None
    with pytest.raises(WorkerlabError):
        targets.wc_name("wc/")


def test_lab_reset_all_resets_the_local_labs_and_skips_the_cluster_ones_with_the_reason():
    result = invoke("lab", "reset", "all")
    assert result.exit_code == 0, result.output
    assert "reset labs: 1, 2, 9" in result.output
    assert "skipped labs 3, 4, 5, 6, 7, 8, 10" in result.output
    assert "kubectl not found" in result.output  # the reason, from the isolated PATH
    assert "Traceback" not in result.output
    assert journal.lab_started_at(9) is not None and journal.lab_started_at(3) is None


def test_lab_reset_all_goes_on_past_a_lab_that_cannot_be_reset(monkeypatch):
    monkeypatch.setattr(lab_commands, "why_unreachable", lambda kube: None)
    result = invoke("lab", "reset", "all")
    assert result.exit_code == 2, result.output
    assert "reset labs: 1, 2, 9" in result.output
    assert "could not reset labs 3, 4, 5, 6, 7, 8, 10, 11\n" in result.output
    assert "skipped labs 12: they stop machines and need 2 worker nodes" in result.output
    assert "Traceback" not in result.output


def test_lab_reset_one_number():
    result = invoke("lab", "reset", "9")
    assert result.exit_code == 0, result.output
    assert "lab 9 (Extend the master: an autoscaler decision) starts now" in result.output


@pytest.mark.parametrize("bad", ["0", "x", "99", ""])
def test_lab_reset_of_no_such_lab_is_one_line_and_exit_2(bad):
    result = invoke("lab", "reset", bad)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output


def test_worker_help_names_the_command_that_was_typed():
    result = invoke("worker", "--help")
    assert result.exit_code == 0, result.output
    assert "usage: workerlab worker" in result.output
    assert "python -m" not in result.output
