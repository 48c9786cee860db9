"""Cold start for new videos: every upload gets a small guaranteed cohort of exposures; when its early
performance, normalised against the catalogue baseline, beats that baseline it earns a cohort
``expansion_factor`` times larger (viral expansion), otherwise it leaves the pool and competes normally.
Follower counts play no part: a first video from an unknown creator gets the same chance."""

from __future__ import annotations

import numpy as np

from ..catalog import Catalog
from ..config import RecommenderConfig
from ..features.items import C, raw_rates

GRADUATED = -1


def exposure_cap(level: np.ndarray | int, config: RecommenderConfig) -> np.ndarray:
    return config.cohort_size * np.power(config.expansion_factor, level)


def normalized_performance(rates: dict[str, np.ndarray], baseline: dict[str, float]) -> np.ndarray:
    """0.4·watch/base + 0.4·completion/base − 0.2·skip/base, divided by its value at the baseline (0.6):
    above 1 means better than a typical video."""
    score = (
        0.4 * rates["watch"] / max(baseline["watch"], 1e-6)
        + 0.4 * rates["complete"] / max(baseline["complete"], 1e-6)
        - 0.2 * rates["skip"] / max(baseline["skip"], 1e-6)
    )
    return score / 0.6


def update_cohorts(catalog: Catalog, baseline: dict[str, float], config: RecommenderConfig, now: float) -> dict:
    """Judge every new item that has used up its current cohort; returns what changed."""
    n = len(catalog)
    levels = catalog.cold_level[:n]
    exposures = catalog.counts[:n, C["exposures"]]
    due = np.flatnonzero((levels >= 0) & (exposures >= exposure_cap(np.maximum(levels, 0), config)))
    expanded, graduated = [], []
    if len(due):
        performance = normalized_performance(raw_rates(catalog.counts[due]), baseline)
        for row, perf in zip(due, performance, strict=True):
            item_id = catalog.items[row].item_id
            if perf > 1.0 and levels[row] < config.max_expansion_level:
                levels[row] += 1
                expanded.append(item_id)
            else:
                levels[row] = GRADUATED
                graduated.append(item_id)
    in_pool = (levels >= 0) & (catalog.uploaded_at[:n] >= now - config.fresh_window_seconds)
    catalog.prune_recent(now - config.fresh_window_seconds)  # what a request looks through for the fresh pool
    return {"expanded": expanded, "graduated": graduated, "in_pool": int(in_pool.sum())}
