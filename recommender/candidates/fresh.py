"""``fresh``: recent uploads still in their cold-start exposure cohort (see reranking.cold_start)."""

from __future__ import annotations

import numpy as np

from ..catalog import Catalog
from ..config import RecommenderConfig
from ..features.items import C
from ..reranking.cold_start import exposure_cap
from .base import CandidateRequest, Scored, sorted_unique

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


SAMPLED_ROUNDS = 4


def generate(request: CandidateRequest, limit: int) -> Scored:
    """A uniform random draw of ``limit`` usable rows of the pool, so every new upload gets its cohort, not just
    the latest ones. A large pool is sampled (by rejection among the recent uploads, O(limit)), not listed."""
    catalog, config, rng = request.state.catalog, request.config, request.rng
    members = catalog.recent_rows.members()
    uploaded = catalog.uploaded_at
    if limit <= 0 or not len(members):
        return []
    if len(members) > 8 * limit:
        picked: list[int] = []
        seen: set[int] = set()
        excluded = request.excluded_row_set
        for _ in range(SAMPLED_ROUNDS):
            draw = sorted_unique(rng.integers(0, len(members), size=4 * limit))  # O(limit), unlike a permutation
            rng.shuffle(draw)
            rows = members[draw]
            # in_pool checks availability: of ``is_usable`` only the exclusions are left
            rows = rows[in_pool(catalog, config, request.now, rows)]
            for row in rows.tolist():
                if row not in seen and row not in excluded:
                    seen.add(row)
                    picked.append(row)
            if len(picked) >= limit:
                return [(row, float(uploaded[row])) for row in picked[:limit]]
        # Few usable rows among many recent uploads: list the pool after all.
    rows = np.sort(members[in_pool(catalog, config, request.now, members)])
    order = rng.permutation(rows)
    return request.take(((row, float(uploaded[row])) for row in order), limit)
