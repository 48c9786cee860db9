"""Nearest neighbours of the user's interest centroids: ``ann/short_term`` and ``ann/long_term``.

All centroids are searched in one batch: exactly over the catalogue's vector matrix while it is small, through
the catalogue's faiss IVF index once it is large (see ``recommender.vector_index``); either way the rows the
user must not be shown are filtered inside the search, so each query's top k are all usable. Each centroid gets
its own share of the quota (with a floor), so a user with two tastes gets candidates for both.
"""

from __future__ import annotations

import numpy as np

from ..catalog import Catalog
from ..vector_index import default_probe, exact_search
from .base import CandidateRequest, Scored

SHORT_TERM = "ann/short_term"
LONG_TERM = "ann/long_term"


def centroid_quotas(weights: np.ndarray, quota: int, floor: int) -> list[int]:
    if not len(weights) or quota <= 0:
        return []
    shares = weights / weights.sum()
    return [max(min(floor, quota), int(round(quota * share))) for share in shares]


def search(catalog: Catalog, queries: np.ndarray, k: int, probe: int = 0,
           exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(rows, scores), each (queries × k), best first, -1 rows where fewer were found: the nearest available rows
    with a vector, other than ``exclude``. ``probe``: IVF lists scanned per query (0: the size's default)."""
    index = catalog.index
    if index is None:
        n = len(catalog)
        eligible = catalog.has_vector[:n] & catalog.available[:n]
        if exclude is not None and len(exclude):
            eligible[exclude] = False
        return exact_search(catalog.active_vectors(), eligible, queries, k)
    return index.search(queries, k, probe or default_probe(index.n_lists), catalog.vectors, exclude)


def generate(request: CandidateRequest, quotas: dict[str, int]) -> dict[str, Scored]:
    catalog = request.state.catalog
    queries = request.queries
    groups = [(SHORT_TERM, queries.short, queries.short_weights), (LONG_TERM, queries.long, queries.long_weights)]
    groups = [(name, q, w) for name, q, w in groups if len(w) and quotas.get(name, 0) > 0]
    if not groups or not catalog.dim or not len(catalog):
        return {}
    matrix = np.vstack([q for _, q, _ in groups])
    per_row: list[tuple[str, int]] = []
    for name, _, weights in groups:
        floor = request.config.min_candidates_per_centroid
        per_row += [(name, n) for n in centroid_quotas(weights, quotas[name], floor)]

    k = max(n for _, n in per_row)
    rows, scores = search(catalog, matrix, k, request.config.ann_probe_lists, request.excluded_rows)
    results: dict[str, dict[int, float]] = {}
    for j, (name, n) in enumerate(per_row):
        merged = results.setdefault(name, {})
        seen = merged.get
        for row, score in zip(rows[j, :n].tolist(), scores[j, :n].tolist(), strict=True):
            # max(score, the row's best so far) without a call per row
            if row >= 0 and ((best := seen(row)) is None or not best > score):
                merged[row] = score
    # Not cut back to the quota by score: that would drop the weaker taste the per-centroid shares protect.
    return {name: sorted(found.items(), key=lambda kv: -kv[1]) for name, found in results.items()}
