"""``item2item``: the items with the highest item-to-item scores summed over everything the user engaged
with (see features.collaborative); the CF job supplies the weights."""

from __future__ import annotations

import numpy as np

from .base import CandidateRequest, Scored

NAME = "item2item"


def generate(request: CandidateRequest, limit: int) -> Scored:
    collab = request.collaborative
    if collab is None:
        return []
    scores = np.where(request.usable, collab.score, 0.0)
    if collab.anchor_rows:
        scores[list(collab.anchor_rows)] = 0.0
    found = np.flatnonzero(scores > 0)
    if len(found) > limit:
        found = found[np.argpartition(-scores[found], limit - 1)[:limit]]
    found = found[np.argsort(-scores[found], kind="stable")]
    return [(int(row), float(scores[row])) for row in found]
