"""``fresh``: recent uploads still in their cold-start exposure cohort (see reranking.cold_start)."""

from __future__ import annotations

import numpy as np

from ..catalog import Catalog
from ..config import RecommenderConfig
from ..features.items import C
from ..reranking.cold_start import exposure_cap
from .base import CandidateRequest, Scored

NAME = "fresh"


def in_pool(catalog: Catalog, config: RecommenderConfig, now: float, rows: np.ndarray) -> np.ndarray:
    """Per row of ``rows``: uploaded within the fresh window, exposures below its cohort cap, available."""
    levels = catalog.cold_level[rows]
    recent = catalog.uploaded_at[rows] >= now - config.fresh_window_seconds
    caps = exposure_cap(np.maximum(levels, 0), config)
    return recent & (levels >= 0) & (catalog.counts[rows, C["exposures"]] < caps) & catalog.available[rows]


def pool_rows(catalog: Catalog, config: RecommenderConfig, now: float) -> np.ndarray:
    """Rows of items uploaded within the fresh window whose exposures are below their cohort cap: looked for
    among the catalogue's recent uploads (pruned by the cohort job), not over the catalogue."""
    members = catalog.recent_rows.members()
    return np.sort(members[in_pool(catalog, config, now, members)])


def generate(request: CandidateRequest, limit: int) -> Scored:
    rows = pool_rows(request.state.catalog, request.config, request.now)
    if not len(rows):
        return []
    # A random draw so every new upload gets its cohort, not just the latest ones.
    order = request.rng.permutation(rows)
    uploaded = request.state.catalog.uploaded_at
    return request.take(((row, float(uploaded[row])) for row in order), limit)
