"""Duration-debiased watch time (D2Q, Zhan et al., KDD 2022).

Raw watch time grows with a video's length whatever the viewer thinks of it, and the watch ratio favours
short loops. D2Q buckets examples by duration (equal-frequency buckets, so each holds enough views) and
replaces watch time by its quantile within the bucket: a 40-second view of a 60-second video and a 6-second
view of a 9-second one are then judged against their peers. An "effective view" is a view whose watch-time
quantile in its bucket reaches ``effective_quantile``: a duration-aware threshold in seconds, fitted on the
training examples. Quantiles of tied watch times are their mean rank (as in ``watch_quantiles``): where most
views of a bucket are 1-second skips, the plain median is that skip, and "reaching the median" would make
nearly every view effective.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DurationBuckets:
    edges: np.ndarray  # inner bucket edges in seconds (len = buckets - 1), ascending
    thresholds: np.ndarray  # per bucket: watch seconds above which a view is "effective"

    def bucket_of(self, durations: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.edges, np.asarray(durations, dtype=np.float64), side="right")

    def to_dict(self) -> dict:
        return {"edges": [round(float(e), 3) for e in self.edges],
                "effective_seconds": [round(float(t), 3) for t in self.thresholds]}


def fit_buckets(watch_seconds: np.ndarray, durations: np.ndarray, n_buckets: int,
                effective_quantile: float) -> DurationBuckets:
    """Equal-frequency duration buckets over these examples, and each bucket's effective-view threshold."""
    durations = np.asarray(durations, dtype=np.float64)
    watch_seconds = np.asarray(watch_seconds, dtype=np.float64)
    n_buckets = max(1, min(n_buckets, len(np.unique(durations)) if len(durations) else 1))
    edges = np.unique(np.quantile(durations, np.linspace(0, 1, n_buckets + 1)[1:-1])) if len(durations) else \
        np.zeros(0)
    buckets = np.searchsorted(edges, durations, side="right")
    thresholds = np.array([_threshold(watch_seconds[buckets == b], effective_quantile) for b in range(len(edges) + 1)])
    return DurationBuckets(edges, thresholds)


def _threshold(watch_seconds: np.ndarray, quantile: float) -> float:
    """The least watch time whose mean-rank quantile among ``watch_seconds`` reaches ``quantile``."""
    if not len(watch_seconds):
        return 0.0
    values, counts = np.unique(watch_seconds, return_counts=True)
    mean_rank_quantile = (np.cumsum(counts) - (counts - 1) / 2.0) / len(watch_seconds)
    reached = np.flatnonzero(mean_rank_quantile >= quantile)
    return float(values[reached[0]] if len(reached) else values[-1])


def watch_quantiles(watch_seconds: np.ndarray, durations: np.ndarray, buckets: DurationBuckets) -> np.ndarray:
    """Each example's watch-time quantile in (0, 1] among the examples of its duration bucket (ties share
    their mean rank); 0 for a card that was never watched."""
    watch_seconds = np.asarray(watch_seconds, dtype=np.float64)
    which = buckets.bucket_of(durations)
    quantiles = np.zeros(len(watch_seconds))
    from scipy.stats import rankdata  # here: importing scipy.stats costs a second of every start-up

    for b in np.unique(which):
        members = which == b
        quantiles[members] = rankdata(watch_seconds[members], method="average") / members.sum()
    quantiles[watch_seconds <= 0] = 0.0
    return quantiles


def effective_views(watch_seconds: np.ndarray, durations: np.ndarray, buckets: DurationBuckets) -> np.ndarray:
    """1.0 where the view reached its duration bucket's threshold (and lasted at all), else 0.0. Reaching, not
    beating: where most views of a bucket are watched to the end, the threshold is the duration itself."""
    watch_seconds = np.asarray(watch_seconds, dtype=np.float64)
    threshold = buckets.thresholds[buckets.bucket_of(durations)]
    return ((watch_seconds >= threshold) & (watch_seconds > 0)).astype(np.float32)
