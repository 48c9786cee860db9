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


def generate(request: CandidateRequest, limit: int) -> Scored:
    state = request.state
    if state.popular_version < 0 or (not state.popular and len(state.catalog)):
        refresh(state)
    catalog = state.catalog
    rows = (catalog.row_of[i] for i in state.popular if i in catalog.row_of)
    return request.take(((row, 1.0 / (1 + rank)) for rank, row in enumerate(rows)), limit)
