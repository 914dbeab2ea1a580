"""Errors the CLI turns into one clear line and a meaningful exit code, never a traceback."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # a check failed, or a load run saw errors
EXIT_USAGE = 2  # bad arguments, or a prerequisite (kubectl, cluster, object) is missing


class WorkerlabError(Exception):
    """A problem the user can fix; `str(error)` is the one line shown to them."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class MissingPrerequisite(WorkerlabError):
    """kubectl, the cluster, the operator or a named object is not there."""


class KubeError(WorkerlabError):
    """kubectl ran but the API server refused or failed the request."""
