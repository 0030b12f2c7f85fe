"""Sign-in throttling: failed attempts per username and per client address in a sliding window.

In-process only: each server process keeps its own counts (several `curbstop serve` processes behind a
balancer each allow the limit), and a restart forgets them. Counts are failures, so people who type their
password right are never slowed; a success clears the username's count but not the address's, so an
attacker cannot reset the address limit by signing in to an account of their own.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottleLimits:
    """At most `per_user` failures for one username and `per_address` from one address per `window_s`."""

    window_s: float
    per_user: int
    per_address: int


class SignInThrottle:
    """Sliding-window failure counts keyed by username and by address (thread-safe)."""

    # Sweep every key for expired entries once in this many calls, so sprayed usernames do not pile up.
    _SWEEP_EVERY = 1000

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._calls = 0

    @staticmethod
    def _user_key(username: str) -> str:
        return "user:" + username.strip().lower()

    @staticmethod
    def _address_key(address: str) -> str:
        return "addr:" + address

    def _recent(self, key: str, now: float, window_s: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - window_s:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after_s(self, *, username: str, address: str, limits: ThrottleLimits) -> int:
        """Seconds until another attempt is allowed for this username and address; 0 when allowed now."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            self._sweep(now, limits.window_s)
            for key, limit in (
                (self._user_key(username), limits.per_user),
                (self._address_key(address), limits.per_address),
            ):
                times = self._recent(key, now, limits.window_s)
                if len(times) >= limit:
                    # The attempt that frees a slot is the limit-th newest failure leaving the window.
                    wait = max(wait, times[len(times) - limit] + limits.window_s - now)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, *, username: str, address: str) -> None:
        """Count a failed attempt against the username and the address."""
        now = self._clock()
        with self._lock:
            for key in (self._user_key(username), self._address_key(address)):
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, *, username: str) -> None:
        """A right password clears the username's failures (not the address's)."""
        with self._lock:
            self._failures.pop(self._user_key(username), None)

    def _sweep(self, now: float, window_s: float) -> None:
        self._calls += 1
        if self._calls % self._SWEEP_EVERY:
            return
        for key in list(self._failures):
            self._recent(key, now, window_s)
