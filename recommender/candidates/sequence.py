"""``sequence/next``: the items the sequence model expects the user to engage with next, given the order of
what they engaged with last (the ``sequence_model`` job trains it). Work per request: the model's vocabulary
(the items it was trained on), never the whole catalogue."""

from __future__ import annotations

import numpy as np

from .base import CandidateRequest, Scored

NAME = "sequence/next"


def generate(request: CandidateRequest, limit: int) -> Scored:
    sequence = request.state.user_sequence(request.user)
    if sequence is None:
        return []
    positions, rows = request.state.sequence_vocabulary()
    if not len(rows):
        return []
    keep = request.usable_mask(rows)
    if sequence.positions:
        # ``positions`` is sorted and unique (EngineState.sequence_vocabulary): a binary search per engaged item
        # finds them, where np.isin would pass over the whole vocabulary
        engaged = np.array(sequence.positions, dtype=np.int64)
        at = np.searchsorted(positions, engaged)
        inside = at < len(positions)
        at, engaged = at[inside], engaged[inside]
        keep[at[positions[at] == engaged]] = False
    positions, rows = positions[keep], rows[keep]
    if not len(rows):
        return []
    scores = sequence.for_vocabulary(positions)
    if len(rows) > limit:
        top = np.argpartition(-scores, limit - 1)[:limit]
        rows, scores = rows[top], scores[top]
    order = np.argsort(-scores, kind="stable")
    return list(zip(rows[order].tolist(), scores[order].tolist(), strict=True))  # one conversion, not two per row
