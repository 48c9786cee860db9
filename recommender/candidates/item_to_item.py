"""``item2item``: the items with the highest item-to-item scores summed over everything the user engaged
with (see features.collaborative); the CF job supplies the weights. Work per request: the rows the user's
anchors point to."""

from __future__ import annotations

import numpy as np

from ..membership import in_sorted
from .base import CandidateRequest, Scored

NAME = "item2item"


def generate(request: CandidateRequest, limit: int) -> Scored:
    collab = request.collaborative
    if collab is None:
        return []
    rows, scores = collab.score.nonzero()
    keep = (scores > 0) & request.usable_mask(rows)
    if collab.anchor_rows:
        keep &= ~in_sorted(rows, np.sort(np.fromiter(collab.anchor_rows, dtype=np.int64)))
    rows, scores = rows[keep], scores[keep]
    if len(rows) > limit:
        top = np.argpartition(-scores, limit - 1)[:limit]
        rows, scores = rows[top], scores[top]
    order = np.lexsort((rows, -scores))  # best first; ties by row, as the dense scan did
    return list(zip(rows[order].tolist(), scores[order].tolist(), strict=True))  # one conversion, not two per row
