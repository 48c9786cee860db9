"""Item engagement statistics: raw counters per item and the smoothed rates derived from them."""

from __future__ import annotations

import math

import numpy as np

from ..events import watch_ratio
from ..types import Event

# Columns of the per-item counter matrix kept by the catalog.
COUNTERS = (
    "exposures",
    "views",
    "watch_ratio_sum",
    "completes",
    "likes",
    "shares",
    "comments",
    "saves",
    "follows",
    "skips",
    "hides",
    "reports",
    "replays",
)
C = {name: i for i, name in enumerate(COUNTERS)}

_EVENT_COUNTER = {
    "view": "views",
    "complete_view": "completes",
    "like": "likes",
    "share": "shares",
    "comment": "comments",
    "save": "saves",
    "follow": "follows",
    "skip": "skips",
    "hide": "hides",
    "report": "reports",
    "replay": "replays",
}
_UNDO_COUNTER = {"unlike": "likes", "unsave": "saves", "unfollow": "follows"}

# Rates the ranker and the prior use, with neutral defaults before any data exists.
DEFAULT_GLOBAL_RATES = {
    "watch": 0.4,
    "complete": 0.2,
    "like": 0.05,
    "share": 0.01,
    "comment": 0.01,
    "follow": 0.005,
    "skip": 0.3,
    "negative": 0.005,
}


def apply_event(counts: np.ndarray, event: Event, duration: float, new_exposure: bool) -> None:
    """Update one item's counter row in place."""
    if new_exposure:
        counts[C["exposures"]] += 1
    name = _EVENT_COUNTER.get(event.event_type)
    if name is not None:
        counts[C[name]] += 1
    undo = _UNDO_COUNTER.get(event.event_type)
    if undo is not None and counts[C[undo]] > 0:
        counts[C[undo]] -= 1
    if event.event_type in ("view", "complete_view"):
        ratio = watch_ratio(event, duration)
        if ratio is not None:
            counts[C["watch_ratio_sum"]] += min(ratio, 1.0)


RATE_NAMES = tuple(DEFAULT_GLOBAL_RATES)
# rates = counts @ _RATE_NUMERATORS / exposures: one matmul for every rate.
_RATE_NUMERATORS = np.zeros((len(COUNTERS), len(RATE_NAMES)))
for _rate, _counters in {
    "watch": ("watch_ratio_sum",),
    "complete": ("completes",),
    "like": ("likes",),
    "share": ("shares",),
    "comment": ("comments",),
    "follow": ("follows",),
    "skip": ("skips",),
    "negative": ("hides", "reports"),
}.items():
    for _counter in _counters:
        _RATE_NUMERATORS[C[_counter], RATE_NAMES.index(_rate)] = 1.0


def rate_matrix(counts: np.ndarray, global_rates: dict[str, float] | None = None, strength: float = 0.0) -> np.ndarray:
    """(n, len(RATE_NAMES)) per-exposure rates; with ``strength`` > 0, smoothed toward ``global_rates``:
    (events + strength·global) / (exposures + strength), so new items sit at the catalogue mean."""
    numerators = counts @ _RATE_NUMERATORS
    exposures = counts[:, C["exposures"]][:, None]
    if strength <= 0:
        return numerators / np.maximum(exposures, 1.0)
    prior = np.array([(global_rates or DEFAULT_GLOBAL_RATES).get(name, DEFAULT_GLOBAL_RATES[name])
                      for name in RATE_NAMES])
    return (numerators + strength * prior) / (exposures + strength)


def raw_rates(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Per-exposure rates for a counter matrix (n, len(COUNTERS)); undefined rates are 0."""
    return dict(zip(RATE_NAMES, rate_matrix(counts).T, strict=True))


def smoothed_rates(counts: np.ndarray, global_rates: dict[str, float], strength: float) -> dict[str, np.ndarray]:
    return dict(zip(RATE_NAMES, rate_matrix(counts, global_rates, strength).T, strict=True))


def global_rates(counts: np.ndarray) -> dict[str, float]:
    """Catalogue-wide rates (the baseline new items are compared against)."""
    totals = counts.sum(axis=0, keepdims=True) if len(counts) else np.zeros((1, len(COUNTERS)))
    if totals[0, C["exposures"]] < 50:  # too little data: keep the neutral defaults
        return dict(DEFAULT_GLOBAL_RATES)
    rates = raw_rates(totals)
    return {name: float(np.clip(values[0], 1e-4, 1.0)) for name, values in rates.items()}


def quality(rates: dict[str, np.ndarray]) -> np.ndarray:
    """One number for "people enjoy this", used by the popular source and cold-start baselines."""
    return (
        rates["watch"]
        + 0.5 * rates["complete"]
        + 2.0 * rates["like"]
        + 3.0 * rates["share"]
        + 2.0 * rates["comment"]
        - 0.5 * rates["skip"]
        - 10.0 * rates["negative"]
    )


def popularity(counts: np.ndarray, global_rates_: dict[str, float], strength: float) -> np.ndarray:
    """Quality × reach: smoothed quality times log of exposures (reach counts, but with diminishing returns)."""
    rates = smoothed_rates(counts, global_rates_, strength)
    return quality(rates) * np.log1p(counts[:, C["exposures"]])


def freshness(uploaded_at: np.ndarray, now: float, half_life: float) -> np.ndarray:
    age = np.maximum(now - uploaded_at, 0.0)
    return np.exp(-math.log(2.0) * age / half_life)


def item_statistics(counts_row: np.ndarray, global_rates_: dict[str, float], strength: float) -> dict[str, float]:
    """Human-readable statistics for one item (inspection, admin pages)."""
    raw = raw_rates(counts_row[None, :])
    smoothed = smoothed_rates(counts_row[None, :], global_rates_, strength)
    stats = {name: float(counts_row[i]) for i, name in enumerate(COUNTERS)}
    stats["mean_watch_ratio"] = float(raw["watch"][0])
    stats["completion_rate"] = float(raw["complete"][0])
    stats.update({f"{name}_rate": float(raw[name][0]) for name in ("like", "share", "comment", "skip")})
    stats.update({f"smoothed_{name}_rate": float(values[0]) for name, values in smoothed.items()})
    return stats
