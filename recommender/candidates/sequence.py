"""``sequence/next``: the items the sequence model expects the user to engage with next, given the order of
what they engaged with last (the ``sequence_model`` job trains it)."""

from __future__ import annotations

import numpy as np

from .base import CandidateRequest, Scored

NAME = "sequence/next"


def generate(request: CandidateRequest, limit: int) -> Scored:
    sequence = request.state.user_sequence(request.user)
    if sequence is None:
        return []
    vocab_of_row = request.state.sequence_vocabulary()
    rows = np.flatnonzero((vocab_of_row >= 0) & request.usable[: len(vocab_of_row)])
    if not len(rows):
        return []
    engaged = set(sequence.positions)
    rows = rows[[int(v) not in engaged for v in vocab_of_row[rows]]]
    scores = sequence.for_vocabulary(vocab_of_row[rows])
    if len(rows) > limit:
        keep = np.argpartition(-scores, limit - 1)[:limit]
        rows, scores = rows[keep], scores[keep]
    order = np.argsort(-scores, kind="stable")
    return [(int(rows[i]), float(scores[i])) for i in order]
