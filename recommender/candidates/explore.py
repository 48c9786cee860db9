"""``explore``: random available items from topics the user has not shown interest in yet."""

from __future__ import annotations

from .base import CandidateRequest, Scored, sorted_unique

NAME = "explore"


def generate(request: CandidateRequest, limit: int) -> Scored:
    catalog = request.state.catalog
    n = len(catalog)
    if not n or limit <= 0:
        return []
    known = {name for name, _ in request.user.long_positive.top(request.now, 3, kind="topic")}
    known |= {name for name, _ in request.user.short_scores.top(request.now, 3, kind="topic")}
    sample = sorted_unique(request.rng.integers(0, n, size=4 * limit))  # O(limit), unlike choice(replace=False)
    request.rng.shuffle(sample)
    rows = ((int(row), 0.0) for row in sample if catalog.items[row].category not in known or not known)
    return request.take(rows, limit)
