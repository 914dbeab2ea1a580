"""Where the checkout's files are: the lab environment is driven by hack/ and manifests/."""

from __future__ import annotations

from pathlib import Path

from workerlab.common.errors import MissingPrerequisite


def repo_root() -> Path:
    """The checkout holding hack/ and manifests/: the lab environment is driven by its files."""
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for candidate in (start, *start.parents):
            if (candidate / "hack" / "up.sh").is_file():
                return candidate
    raise MissingPrerequisite(
        "cannot find the workerlab checkout (hack/up.sh)", hint="run this from inside it"
    )
