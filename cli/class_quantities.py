"""Kubernetes' rules for the class settings' values, checked before anything reaches a cluster:
the quantity grammar (`500m`, `2Gi`, `1e3`), ResourceQuota resource names, and the LimitRange's
sections and resources. Pure; each check returns why a value is refused, or None."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from fractions import Fraction

LIMIT_SECTIONS = ("min", "defaultRequest", "default", "max")  # each at most the next
LIMIT_RESOURCES = ("cpu", "memory", "ephemeral-storage")

# What the API server takes in a ResourceQuota's spec.hard without a '/' (its standard quota
# resources), each with whether it counts objects (then only whole numbers are valid); names
# with a '/' ('count/deployments.apps', 'requests.nvidia.com/gpu') are open.
STANDARD_QUOTA: dict[str, bool] = {
    "pods": True,
    "cpu": False,
    "memory": False,
    "ephemeral-storage": False,
    "requests.cpu": False,
    "requests.memory": False,
    "requests.storage": False,
    "requests.ephemeral-storage": False,
    "limits.cpu": False,
    "limits.memory": False,
    "limits.ephemeral-storage": False,
    "services": True,
    "services.nodeports": True,
    "services.loadbalancers": True,
    "secrets": True,
    "configmaps": True,
    "persistentvolumeclaims": True,
    "replicationcontrollers": True,
    "resourcequotas": True,
}
HUGEPAGES_PREFIXES = ("hugepages-", "requests.hugepages-")
RESOURCE_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$")

# --- quantities -----------------------------------------------------------------------------
# Kubernetes' quantity grammar: <sign?><digits[.digits]|.digits><suffix?>, the suffix one of
# the binary (Ki..Ei), decimal (n u m "" k M G T P E) or exponent (e3, E-2) forms.
QUANTITY = re.compile(
    r"^(?P<sign>[+-]?)(?P<whole>\d*)(?:\.(?P<frac>\d*))?"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$"
)
BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
MAX_EXPONENT = 64
LIKE = "like 12, 500m, 2Gi"


def parse_quantity(text: str) -> Fraction:
    """'500m' -> 1/2, '2Gi' -> 2147483648, '1e3' -> 1000; ValueError if not a quantity."""
    match = QUANTITY.match(text)
    if match is None or not (match["whole"] or match["frac"]):
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    digits = (match["whole"] or "") + (match["frac"] or "")
    number = Fraction(int(digits), 10 ** len(match["frac"] or ""))
    suffix = match["suffix"] or ""
    if suffix in BINARY:
        number *= 2 ** BINARY[suffix]
    else:
        exponent = DECIMAL[suffix] if suffix in DECIMAL else int(suffix[1:])
        if abs(exponent) > MAX_EXPONENT:
            raise ValueError(f"{text!r}: exponent out of range")
        number *= Fraction(10) ** exponent
    return -number if match["sign"] == "-" else number


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f", did you mean {close[0]!r}?" if close else ""


def quantity_problem(value: object, counted: bool = False) -> str | None:
    """Why `value` is no quota/limit value, or None: a non-negative quantity (whole if counted)."""
    if value is None or value == "":
        return f"no value (a Kubernetes quantity, {LIKE})"
    text = value if isinstance(value, str) else str(value)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return f"{text!r} is not a Kubernetes quantity ({LIKE})"
    try:
        number = parse_quantity(text)
    except ValueError:
        return f"{text!r} is not a Kubernetes quantity ({LIKE})"
    if number < 0:
        return f"{text!r} is negative: quotas and limits are at least 0"
    if counted and number.denominator != 1:
        return f"{text!r} is not a whole number (it counts objects)"
    return None


def quota_key_problem(key: str) -> str | None:
    """Why `key` is no ResourceQuota resource name, or None."""
    well_formed = bool(RESOURCE_NAME.match(key)) and key.count("/") <= 1 and len(key) <= 253
    known = "/" in key or key in STANDARD_QUOTA or key.startswith(HUGEPAGES_PREFIXES)
    if well_formed and known:
        return None
    return (
        f"{key!r} is not a ResourceQuota resource{did_you_mean(key, STANDARD_QUOTA)} "
        "(like pods, requests.cpu, limits.memory, count/deployments.apps)"
    )


def is_counted(key: str) -> bool:
    """A quota on a number of objects (whole numbers only)."""
    return STANDARD_QUOTA.get(key, False) or key.startswith("count/")


def limit_key_problem(section: str, resource: str) -> str | None:
    """Why SECTION.RESOURCE is no LimitRange Container entry, or None."""
    if section not in LIMIT_SECTIONS:
        return (
            f"unknown section {section!r}{did_you_mean(section, LIMIT_SECTIONS)} "
            f"(one of {', '.join(LIMIT_SECTIONS)})"
        )
    if resource not in LIMIT_RESOURCES:
        return (
            f"unknown resource {resource!r}{did_you_mean(resource, LIMIT_RESOURCES)} "
            f"(one of {', '.join(LIMIT_RESOURCES)})"
        )
    return None
