"""``item2item``: items co-engaged with the user's recent positives (neighbours from the CF job)."""

from __future__ import annotations

from .base import CandidateRequest, Scored

NAME = "item2item"


def generate(request: CandidateRequest, limit: int) -> Scored:
    neighbors = request.state.neighbors
    catalog = request.state.catalog
    scores: dict[str, float] = {}
    anchors = {item_id for item_id, _ in request.user.recent_positive}
    for item_id, weight in request.user.recent_positive:
        for neighbor, similarity in neighbors.get(item_id, ()):
            if neighbor not in anchors:
                scores[neighbor] = scores.get(neighbor, 0.0) + weight * similarity
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    return request.take(((catalog.row_of[i], s) for i, s in ranked if i in catalog.row_of), limit)
