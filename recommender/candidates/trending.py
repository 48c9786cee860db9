"""``trending``: items whose engagement is growing fastest (list computed by the trends job)."""

from __future__ import annotations

from .base import CandidateRequest, Scored

NAME = "trending"


def generate(request: CandidateRequest, limit: int) -> Scored:
    catalog = request.state.catalog
    rows = (catalog.row_of[i] for i in request.state.trending if i in catalog.row_of)
    return request.take(((row, float(catalog.trend[row])) for row in rows), limit)
