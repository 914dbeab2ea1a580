"""Run wrk (bounded by -d and a hard timeout) and parse requests/s, p50, p99 and errors."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from common import run

UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return round(float(value) * UNITS_MS[unit], 3)


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # socket errors + non-2xx/3xx

    def to_dict(self) -> dict:
        return asdict(self)


def parse(output: str) -> WrkResult:
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.M))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50_ms=_ms(percentiles["50"]),
        p99_ms=_ms(percentiles["99"]),
        requests=int(re.search(r"(\d+) requests in", output).group(1)),
        errors=errors + (int(non_2xx.group(1)) if non_2xx else 0),
    )


def wrk(
    url: str, seconds: float, connections: int, threads: int = 1, close: bool = False
) -> WrkResult:
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if close:
        args += ["-H", "Connection: close"]  # a fresh connection per request, as a new user
    return parse(run([*args, "--timeout", "10s", url], timeout=seconds + 30))
