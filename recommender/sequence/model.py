"""GRU4Rec inference in numpy (the request path never loads torch): a GRU over the embeddings of the
user's most recent positively engaged items, scored against the same (tied) item embeddings."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))


@dataclass(frozen=True)
class SequenceModel:
    ids: tuple[str, ...]  # the vocabulary: item ids, position = embedding row
    embeddings: np.ndarray  # (n, d) float32
    w_ih: np.ndarray  # (3d, d): torch.nn.GRU's layout, gates (reset, update, new)
    w_hh: np.ndarray  # (3d, d)
    b_ih: np.ndarray  # (3d,)
    b_hh: np.ndarray  # (3d,)
    max_length: int
    version: int = 0
    metrics: dict | None = None

    @property
    def index(self) -> dict[str, int]:
        cached = self.__dict__.get("_index")
        if cached is None:
            cached = {item_id: p for p, item_id in enumerate(self.ids)}
            object.__setattr__(self, "_index", cached)
        return cached

    def hidden(self, positions: list[int]) -> np.ndarray:
        """The GRU state after reading ``positions`` (vocabulary rows, oldest first; the last max_length)."""
        d = self.embeddings.shape[1]
        h = np.zeros(d, dtype=np.float32)
        for p in positions[-self.max_length :]:
            gi = self.w_ih @ self.embeddings[p] + self.b_ih
            gh = self.w_hh @ h + self.b_hh
            r = _sigmoid(gi[:d] + gh[:d])
            z = _sigmoid(gi[d : 2 * d] + gh[d : 2 * d])
            n = np.tanh(gi[2 * d :] + r * gh[2 * d :])
            h = ((1.0 - z) * n + z * h).astype(np.float32)
        return h

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance of the item embeddings (cached): the logits' moments for any state h."""
        cached = self.__dict__.get("_moments")
        if cached is None:
            e = self.embeddings.astype(np.float64)
            covariance = np.cov(e, rowvar=False, bias=True) if len(e) > 1 else np.zeros((e.shape[1],) * 2)
            cached = (e.mean(axis=0), covariance)
            object.__setattr__(self, "_moments", cached)
        return cached

    def scores(self, positions: list[int]) -> np.ndarray:
        """Next-item logits over the vocabulary."""
        return self.embeddings @ self.hidden(positions)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        meta = {"ids": list(self.ids), "max_length": self.max_length, "version": self.version,
                "metrics": self.metrics or {}}
        np.savez(buffer, embeddings=self.embeddings, w_ih=self.w_ih, w_hh=self.w_hh, b_ih=self.b_ih,
                 b_hh=self.b_hh, meta=np.array(json.dumps(meta)))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> SequenceModel:
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return cls(tuple(meta["ids"]), data["embeddings"], data["w_ih"], data["w_hh"], data["b_ih"],
                       data["b_hh"], int(meta["max_length"]), int(meta["version"]), meta["metrics"])


def user_sequence(engaged: dict[str, tuple[float, float]], index: dict[str, int]) -> list[int]:
    """Vocabulary rows of the items the user engaged with positively, in the order of their latest
    engagement (the order ``UserState.engaged`` keeps and the training job rebuilds from the log)."""
    return [index[item_id] for item_id, (net, _) in engaged.items() if net > 0 and item_id in index]


@dataclass(frozen=True)
class UserSequence:
    """One user's GRU state under one model: next-item scores for any catalogue rows, standardised over the
    whole vocabulary without scoring it (mean and variance of e·h follow from the embeddings' moments)."""

    model: SequenceModel
    hidden_state: np.ndarray
    mean: float
    std: float
    positions: tuple[int, ...]

    @classmethod
    def of(cls, model: SequenceModel, positions: list[int]) -> UserSequence:
        h = model.hidden(positions)
        mean_embedding, covariance = model.moments()
        return cls(model, h, float(mean_embedding @ h), float(np.sqrt(max(h @ covariance @ h, 0.0))) + 1e-6,
                   tuple(positions))

    def for_vocabulary(self, vocab: np.ndarray) -> np.ndarray:
        """Scores in (-1, 1) for vocabulary positions (tanh of the standardised logit / 3)."""
        logits = self.model.embeddings[vocab] @ self.hidden_state
        return np.tanh((logits - self.mean) / self.std / 3.0).astype(np.float32)

