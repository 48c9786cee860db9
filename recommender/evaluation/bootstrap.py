"""Bootstrap confidence intervals over users (paired across methods)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .metrics import Metric, Predictions, Truth

__all__ = [
    "bootstrap_indices",
    "interval",
    "mean_with_interval",
    "metric_with_interval",
    "paired_difference",
    "paired_mean_difference",
]


def bootstrap_indices(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """``n_boot`` x ``n`` user indices drawn with replacement. The same seed gives the same
    resamples, so intervals of different methods (and their differences) are paired."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_boot, n)) if n else np.zeros((n_boot, 0), dtype=int)


def interval(samples: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile interval of bootstrap samples."""
    if samples.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(samples, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def _resampled_values(
    metric: Metric, truth: Truth, predictions: Predictions, k: int, idx: np.ndarray
) -> tuple[float, np.ndarray]:
    per_user = getattr(metric, "per_user", None)
    if per_user is not None:
        values = per_user(truth, predictions, k)
        point = float(values.mean()) if values.size else 0.0
        return point, values[idx].mean(axis=1) if values.size else np.zeros(idx.shape[0])
    users = list(truth)
    point = metric(truth, predictions, k)
    samples = np.empty(idx.shape[0])
    for b, row in enumerate(idx):
        picked = {users[i] for i in row}
        samples[b] = metric({u: truth[u] for u in picked}, predictions, k)
    # A set-level metric (catalogue coverage) shrinks when a resample repeats users, so its bootstrap
    # distribution sits below the point estimate: re-centre it there (a bias-corrected percentile interval).
    if samples.size:
        bounded = samples.min() >= 0.0 and samples.max() <= 1.0 and 0.0 <= point <= 1.0
        samples += point - samples.mean()
        if bounded:  # a share stays a share
            np.clip(samples, 0.0, 1.0, out=samples)
    return point, samples


def metric_with_interval(
    metric: Metric,
    truth: Truth,
    predictions: Predictions,
    k: int,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, float | list[float]]:
    """``{"value": v, "ci": [lo, hi]}`` for one method."""
    idx = bootstrap_indices(len(truth), n_boot, seed)
    point, samples = _resampled_values(metric, truth, predictions, k, idx)
    return {"value": point, "ci": list(interval(samples, alpha))}


def paired_difference(
    metric: Metric,
    truth: Truth,
    ours: Predictions,
    baseline: Predictions,
    k: int,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, float | list[float]]:
    """Paired bootstrap of (ours - baseline) over the same resampled users.

    Returns ``{"diff", "ci": [lo, hi], "p_better"}`` where ``p_better`` is the share of
    resamples in which ours is strictly better.
    """
    idx = bootstrap_indices(len(truth), n_boot, seed)
    a_point, a_samples = _resampled_values(metric, truth, ours, k, idx)
    b_point, b_samples = _resampled_values(metric, truth, baseline, k, idx)
    diff = a_samples - b_samples
    return {
        "diff": a_point - b_point,
        "ci": list(interval(diff, alpha)),
        "p_better": float((diff > 0).mean()) if diff.size else float("nan"),
    }


def mean_with_interval(values: Sequence[float] | np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict:
    """Bootstrap interval of a plain mean (e.g. per-session watch time)."""
    arr = np.asarray(values, dtype=float)
    idx = bootstrap_indices(arr.size, n_boot, seed)
    samples = arr[idx].mean(axis=1) if arr.size else np.zeros(0)
    return {"value": float(arr.mean()) if arr.size else float("nan"), "ci": list(interval(samples))}


def paired_mean_difference(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, n_boot: int = 1000, seed: int = 0
) -> dict:
    """Paired bootstrap of mean(a - b) for aligned per-unit values."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    out = mean_with_interval(diff, n_boot, seed)
    return {"diff": out["value"], "ci": out["ci"]}
