"""Recency-weighted scores: value(t) = Σ amount_i · exp(-λ (t - t_i)), stored lazily per key."""

from __future__ import annotations

import math
from collections.abc import Hashable


def decay_rate(half_life: float) -> float:
    return math.log(2.0) / half_life


class DecayedScores:
    """Exponentially decaying sums keyed by anything hashable (e.g. ("topic", "cats"))."""

    __slots__ = ("rate", "_values")

    def __init__(self, half_life: float) -> None:
        self.rate = decay_rate(half_life)
        self._values: dict[Hashable, tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self._values)

    def add(self, key: Hashable, amount: float, now: float) -> None:
        value, at = self._values.get(key, (0.0, now))
        self._values[key] = (value * math.exp(-self.rate * max(0.0, now - at)) + amount, max(now, at))

    def get(self, key: Hashable, now: float) -> float:
        entry = self._values.get(key)
        if entry is None:
            return 0.0
        value, at = entry
        return value * math.exp(-self.rate * max(0.0, now - at))

    def prune(self, now: float, min_abs: float = 0.01) -> int:
        """Forget keys whose score has decayed to almost nothing; returns how many were dropped."""
        stale = [key for key in self._values if abs(self.get(key, now)) < min_abs]
        for key in stale:
            del self._values[key]
        return len(stale)

    def items(self, now: float) -> list[tuple[Hashable, float]]:
        return [(key, self.get(key, now)) for key in self._values]

    def top(self, now: float, n: int, kind: str | None = None, positive: bool = True) -> list[tuple[str, float]]:
        """Highest (or most negative) scores, optionally only keys of one kind ((kind, name) keys)."""
        rate, exp = self.rate, math.exp
        rows = []
        for key, (amount, at) in self._values.items():
            if kind is not None and not (isinstance(key, tuple) and key[0] == kind):
                continue  # decayed only for the keys of ``kind`` (``get``'s formula)
            value = amount * exp(-rate * max(0.0, now - at))
            if (value > 0) == positive and value:
                rows.append((key[1] if kind else key, value))
        rows.sort(key=lambda kv: -abs(kv[1]))
        return rows[:n]
