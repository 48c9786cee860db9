"""Nearest neighbours of the user's interest centroids: ``ann/short_term`` and ``ann/long_term``.

Exact search over the in-memory vector matrix, all centroids batched into one matmul. Each centroid gets
its own share of the quota (with a floor), so a user with two tastes gets candidates for both.
"""

from __future__ import annotations

import numpy as np

from ..catalog import Catalog
from ..vector_index import probe_rows
from .base import CandidateRequest, Scored

SHORT_TERM = "ann/short_term"
LONG_TERM = "ann/long_term"


def centroid_quotas(weights: np.ndarray, quota: int, floor: int) -> list[int]:
    if not len(weights) or quota <= 0:
        return []
    shares = weights / weights.sum()
    return [max(min(floor, quota), int(round(quota * share))) for share in shares]


def search(catalog: Catalog, queries: np.ndarray, probe: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows searched, scores (queries × rows)): exact over everything, or over the probed coarse lists."""
    if catalog.coarse_centroids is None:
        return np.arange(len(catalog)), queries @ catalog.active_vectors().T
    rows = probe_rows(catalog.coarse_centroids, catalog.coarse_list[: len(catalog)], queries, probe)
    return rows, queries @ catalog.vectors[rows].T


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

    rows, scores = search(catalog, matrix, request.config.ann_probe_lists)  # scores: (centroids, rows)
    fetch = min(len(rows), 2 * max(n for _, n in per_row) + min(len(request.excluded), 2000))
    if fetch < len(rows):
        top = np.argpartition(-scores, fetch - 1, axis=1)[:, :fetch]
    else:
        top = np.tile(np.arange(len(rows)), (len(per_row), 1))
    results: dict[str, dict[int, float]] = {}
    allowed = (request.usable & catalog.has_vector[: len(catalog)])[rows]
    for j, (name, n) in enumerate(per_row):
        columns = top[j][allowed[top[j]]]
        columns = columns[np.argsort(-scores[j, columns], kind="stable")][:n]
        merged = results.setdefault(name, {})
        for row, score in zip(rows[columns].tolist(), scores[j, columns].tolist(), strict=True):
            merged[row] = max(score, merged.get(row, -np.inf))
    # Not cut back to the quota by score: that would drop the weaker taste the per-centroid shares protect.
    return {name: sorted(found.items(), key=lambda kv: -kv[1]) for name, found in results.items()}
