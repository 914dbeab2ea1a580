"""Where the checkout is, for tests that read its manifests or run its scripts."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
