"""The project's own binaries (kubectl, kind, helm...), found where hack/ builds them."""

from __future__ import annotations

import shutil

import pytest

from support.paths import CACHE


def tool(name: str, hint: str = "run `make up` first") -> str:
    """The cache's build of NAME, else PATH's; a missing one fails the test, saying how."""
    for folder in (CACHE / "bin", *sorted(CACHE.glob("k8s/v*/bin"), reverse=True)):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found (in {CACHE}/bin, {CACHE}/k8s/*/bin or PATH): {hint}")
    return found
