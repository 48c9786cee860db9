"""Token buckets: a burst allowance refilled at a steady rate, per key, with bounded memory.

Used for beacons (events per visitor and per client address): a request costs as many tokens as it carries
events, so one client can neither send many small batches nor a few huge ones faster than the refill rate.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass


class TokenBuckets:
    def __init__(self, burst: int, per_minute: int, max_keys: int = 100_000) -> None:
        self.burst = float(max(burst, 1))
        self.rate = max(per_minute, 1) / 60.0  # tokens per second
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def wait_for(self, key: str, cost: float, now: float | None = None) -> float:
        """Seconds until ``cost`` tokens are there (0: now). A cost above the burst can never pass whole."""
        now = time.monotonic() if now is None else now
        missing = min(cost, self.burst) - self._level(key, now)
        return 0.0 if missing <= 0 else missing / self.rate

    def take(self, key: str, cost: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._buckets[key] = (self._level(key, now) - cost, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:  # the least recently used keys go first (they are full again)
            self._buckets.popitem(last=False)


@dataclass
class BeaconLimits:
    """Events per visitor (browser session) and per client address, each a burst plus a per-minute rate."""

    per_visitor: TokenBuckets
    per_address: TokenBuckets

    @classmethod
    def from_settings(cls, settings) -> BeaconLimits:  # noqa: ANN001 - app.config.Settings
        return cls(TokenBuckets(settings.beacon_burst, settings.beacon_events_per_minute),
                   TokenBuckets(settings.beacon_address_burst, settings.beacon_address_events_per_minute))

    def admit(self, visitor: str, address: str, events: int) -> int:
        """0 when the batch may go in (its tokens are taken), else whole seconds for ``Retry-After``."""
        cost = max(events, 1)
        now = time.monotonic()
        wait = max(self.per_visitor.wait_for(visitor, cost, now), self.per_address.wait_for(address, cost, now))
        if wait > 0:
            return max(1, math.ceil(wait))
        self.per_visitor.take(visitor, cost, now)
        self.per_address.take(address, cost, now)
        return 0
