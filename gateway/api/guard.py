"""Slows password guessing: after repeated failures from one address, logins wait."""

from __future__ import annotations

import time
from collections import defaultdict, deque

from gateway.api.http import ApiError


class LoginGuard:
    def __init__(self, max_failures: int = 10, window_s: float = 300.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, client: str) -> deque[float]:
        q = self._failures[client]
        cutoff = time.monotonic() - self.window_s
        while q and q[0] < cutoff:
            q.popleft()
        return q

    def check(self, client: str) -> None:
        q = self._recent(client)
        if len(q) >= self.max_failures:
            wait = int(q[0] + self.window_s - time.monotonic()) + 1
            raise ApiError(429, f"too many failed logins from this address; try again in {wait} s")

    def failed(self, client: str) -> None:
        if len(self._failures) > 10_000:  # many addresses guessing: forget the stale ones
            for key in [k for k in self._failures if not self._recent(k)]:
                del self._failures[key]
        self._recent(client).append(time.monotonic())

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
