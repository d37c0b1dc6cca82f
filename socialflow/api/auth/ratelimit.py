"""Login attempts limited per client address and per account, in a sliding window.

Kept in process memory: one API process is exact; several replicas each count their own
attempts, so the effective limit is multiplied by the replica count.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from collections.abc import Callable

from socialflow.core.errors import RateLimitedError

__all__ = ["LoginLimiter"]


class LoginLimiter:
    """Counts attempts per IP (all attempts) and per account (failures only).

    Args:
        per_account: Failed attempts allowed per account per window.
        per_ip: Attempts allowed per address per window.
        window_seconds: Window length.
        clock: Monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        *,
        per_account: int,
        per_ip: int,
        window_seconds: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_account = per_account
        self.per_ip = per_ip
        self.window = window_seconds
        self.clock = clock
        self._ip: dict[str, deque[float]] = defaultdict(deque)
        self._account: dict[str, deque[float]] = defaultdict(deque)

    def check(self, ip: str, account: str) -> None:
        """Count an attempt from ``ip`` and refuse it when a limit is reached.

        Raises:
            RateLimitedError: With the seconds until the next attempt is allowed.
        """
        now = self.clock()
        account = account.strip().lower()
        for hits, limit, what in (
            (self._account[account], self.per_account, "this account"),
            (self._ip[ip], self.per_ip, "your address"),
        ):
            self._trim(hits, now)
            if len(hits) >= limit:
                retry = max(1, math.ceil(hits[0] + self.window - now))
                msg = f"too many login attempts for {what}; try again in {retry} s"
                raise RateLimitedError(msg, retry_after=retry)
        self._ip[ip].append(now)

    def failed(self, account: str) -> None:
        """Count a failed login for ``account``."""
        self._account[account.strip().lower()].append(self.clock())

    def succeeded(self, account: str) -> None:
        """Forget an account's failures after a successful login."""
        self._account.pop(account.strip().lower(), None)

    def _trim(self, hits: deque[float], now: float) -> None:
        while hits and hits[0] <= now - self.window:
            hits.popleft()
