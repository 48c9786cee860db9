"""Text embedders for the evaluation.

The real sentence encoder lives in ``media`` and is injected by the caller (``recommender`` must
not import ``media``). :func:`hashed_bow_embedder` is an explicit, documented BASELINE embedder:
a deterministic hashed bag of words (words and word bigrams hashed with BLAKE2 into ``dim``
buckets with a +/-1 sign, L2-normalised). It needs no model and is used in tests and as a
fallback; results computed with it say so (``embedder`` in the results).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

import numpy as np

__all__ = ["EmbedTexts", "hashed_bow_embedder"]

EmbedTexts = Callable[[list[str]], np.ndarray]

_WORD = re.compile(r"[a-z0-9]+")


def hashed_bow_embedder(dim: int = 64) -> EmbedTexts:
    """A deterministic hashed bag-of-words embedder (baseline; no learned semantics)."""

    def _bucket(token: str) -> tuple[int, float]:
        h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
        return h % dim, (1.0 if (h >> 40) & 1 else -1.0)

    def embed(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            tokens = words + [f"{a}_{b}" for a, b in zip(words, words[1:], strict=False)]
            for tok in tokens:
                j, sign = _bucket(tok)
                out[row, j] += sign
            norm = np.linalg.norm(out[row])
            if norm > 0:
                out[row] /= norm
        return out

    embed.__name__ = f"hashed_bow_{dim}"
    return embed
