"""A constant, bounded request stream: each stream sends GET every `interval` seconds on a fresh
connection (as a new user would), until stopped, `max_seconds` pass or `max_requests` are sent.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ConstantLoad:
    port: int
    path: str = "/"
    streams: int = 2
    interval: float = 0.05
    max_seconds: float = 180.0
    max_requests: int = 20000
    timeout: float = 5.0
    outcomes: Counter = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _one(self) -> str:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            connection.request("GET", self.path, headers={"Connection": "close"})
            response = connection.getresponse()
            response.read()
            return "ok" if response.status < 400 else f"http {response.status}"
        except OSError as error:
            return type(error).__name__
        except http.client.HTTPException as error:
            return type(error).__name__
        finally:
            connection.close()

    def _stream(self, deadline: float) -> None:
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if self.outcomes.total() >= self.max_requests:
                    return
            started = time.monotonic()
            outcome = self._one()
            with self._lock:
                self.outcomes[outcome] += 1
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def start(self) -> ConstantLoad:
        deadline = time.monotonic() + self.max_seconds
        for _ in range(self.streams):
            thread = threading.Thread(target=self._stream, args=(deadline,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> dict[str, int]:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 1)
        return {"total": self.outcomes.total(), "failed": self.failed, **self.outcomes}

    @property
    def failed(self) -> int:
        return self.outcomes.total() - self.outcomes["ok"]
