"""``popular``: the last fallback, so a feed is never empty (quality × reach, recomputed when stale)."""

from __future__ import annotations

import numpy as np

from ..features.items import popularity
from ..state import EngineState
from .base import CandidateRequest, Scored

NAME = "popular"
LIST_SIZE = 2000


def refresh(state: EngineState) -> list[str]:
    catalog = state.catalog
    n = len(catalog)
    if not n:
        state.popular = []
    else:
        score = popularity(catalog.counts[:n], state.global_rates, state.config.rate_prior_strength)
        score = np.where(catalog.available[:n], score, -np.inf)
        size = min(n, LIST_SIZE)
        top = np.argpartition(-score, size - 1)[:size] if size < n else np.arange(n)
        # Ties (no data yet) fall back to the newest uploads.
        top = top[np.lexsort((-catalog.uploaded_at[top], -score[top]))]
        state.popular = [catalog.items[row].item_id for row in top if np.isfinite(score[row])]
    state.popular_version = catalog.version
    return state.popular


def _rows(state: EngineState) -> tuple[list[int], np.ndarray]:
    """The popular list's rows (ids the catalogue holds, in order), as a list and an array: kept until the list
    or the catalogue changes (the cache holds the list itself, so its identity cannot be reused)."""
    catalog = state.catalog
    cached = catalog.query_cache.get(NAME)
    if cached is not None and cached[0] is state.popular and cached[1] == catalog.version:
        return cached[2], cached[3]
    row_of = catalog.row_of
    rows = [row_of[i] for i in state.popular if i in row_of]
    array = np.array(rows, dtype=np.int64)
    if len(catalog.query_cache) > 256:
        catalog.query_cache.clear()
    catalog.query_cache[NAME] = (state.popular, catalog.version, rows, array)
    return rows, array


def generate(request: CandidateRequest, limit: int) -> Scored:
    state = request.state
    if state.popular_version < 0 or (not state.popular and len(state.catalog)):
        refresh(state)
    rows, array = _rows(state)
    # ``request.take`` over (row, 1 / (1 + rank)), availability read for all the rows at once
    out: Scored = []
    excluded = request.excluded_row_set
    for rank, (row, available) in enumerate(zip(rows, state.catalog.available[array].tolist(), strict=True)):
        if len(out) >= limit:
            break
        if available and row not in excluded:
            out.append((row, 1.0 / (1 + rank)))
    return out
