"""The image a worker pod runs: the operator's default (a setting) or the spec's own. Pure.

The default is configuration (flags, or the env the Helm chart sets), never a constant to edit.
It reaches the core as data on each WorkerCluster, so a new default rolls the pods of the
WorkerClusters that follow it, like any template change, while a pinned spec.image stays put.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# The tag of a local build of worker/Dockerfile (docs/worker.md): used only when nothing is
# configured (a laptop's `workerlab operator`), and then with a warning.
FALLBACK_IMAGE = "workerlab/worker:dev"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
DEFAULT_PULL_POLICY = "IfNotPresent"
# [registry[:port]/]path[:tag][@algorithm:hex digest]: the CRD's spec.image pattern, verbatim
# (a test keeps them equal), so the operator accepts exactly what the API server accepts.
IMAGE_PATTERN = (
    r"^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)
MAX_IMAGE_LENGTH = 512  # the CRD's maxLength
# A Secret's name is a DNS-1123 subdomain.
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
MAX_SECRET_NAME_LENGTH = 253


@dataclass(frozen=True)
class WorkerImage:
    """An image reference and how the kubelet gets it (the pod's imagePullSecrets)."""

    reference: str = FALLBACK_IMAGE
    pull_policy: str = DEFAULT_PULL_POLICY
    pull_secrets: tuple[str, ...] = ()


# The default of defaults: what the core uses when it is handed no setting (tests, a REPL).
FALLBACK_WORKER_IMAGE = WorkerImage()


def is_image_reference(text: str) -> bool:
    # fullmatch: `$` alone would let a trailing newline through, the API server would not.
    return len(text) <= MAX_IMAGE_LENGTH and re.fullmatch(IMAGE_PATTERN, text) is not None


class InvalidSetting(ValueError):
    """A bad default-image setting; `setting` says which (reference, pull_policy, pull_secrets)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


def default_worker_image(
    reference: str | None, pull_policy: str | None, pull_secrets: Iterable[str] = ()
) -> WorkerImage:
    """The operator's default, validated (InvalidSetting, one line, otherwise).

    Each argument may be None/empty (not configured): the fallback image, IfNotPresent, none.
    """
    reference = (reference or "").strip() or FALLBACK_IMAGE
    if not is_image_reference(reference):
        raise InvalidSetting(
            "reference",
            f"{reference!r} is not an image reference "
            "([registry[:port]/]path[:tag][@sha256:digest], path in lower case)",
        )
    policy = (pull_policy or "").strip() or DEFAULT_PULL_POLICY
    if policy not in PULL_POLICIES:
        raise InvalidSetting(
            "pull_policy", f"{policy!r} is not a pull policy ({', '.join(PULL_POLICIES)})"
        )
    secrets = tuple(dict.fromkeys(s.strip() for s in pull_secrets if s.strip()))
    for name in secrets:
        if len(name) > MAX_SECRET_NAME_LENGTH or not re.fullmatch(SECRET_NAME_PATTERN, name):
            raise InvalidSetting(
                "pull_secrets", f"{name!r} is not a Secret name (a DNS-1123 subdomain)"
            )
    return WorkerImage(reference, policy, secrets)


def resolve(
    spec_image: str | None, spec_pull_policy: str | None, default: WorkerImage
) -> WorkerImage:
    """What a pod runs. A spec.image wins, without the default's pull secrets (they are for the
    default's registry); an explicit spec.imagePullPolicy applies to either image."""
    if spec_image:
        return WorkerImage(spec_image, spec_pull_policy or DEFAULT_PULL_POLICY)
    if spec_pull_policy:
        return WorkerImage(default.reference, spec_pull_policy, default.pull_secrets)
    return default
