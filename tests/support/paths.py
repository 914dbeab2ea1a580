"""Where the checkout is, for tests that read its manifests or run its scripts."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The project's caches (hack/lib.sh's CACHE): the toolchain's binaries, make up's overlays.
CACHE = Path(os.environ.get("WORKERLAB_CACHE", Path.home() / ".cache" / "workerlab"))
