"""Context features: time of day as a point on the unit circle, device as a one-hot."""

from __future__ import annotations

import math
import time

DEVICES = ("mobile", "desktop", "tablet")


def hour_of_day(timestamp: float) -> float:
    t = time.gmtime(timestamp)
    return t.tm_hour + t.tm_min / 60.0


def time_of_day(timestamp: float) -> tuple[float, float]:
    """(sin, cos) of the hour, so 23:00 and 01:00 are close."""
    angle = 2.0 * math.pi * hour_of_day(timestamp) / 24.0
    return math.sin(angle), math.cos(angle)


def device_one_hot(device: str | None) -> tuple[float, ...]:
    name = (device or "").lower()
    return tuple(1.0 if name == known else 0.0 for known in DEVICES)
