"""Multi-task logistic ranker: P(outcome) = σ(prior_logit(x) + w_outcome · x).

The prior turns an item's smoothed rates and the user-item affinity into sensible probabilities before
any training data exists; the learned weights start at zero and only ever correct that prior.
"""

from __future__ import annotations

import io
import json

import numpy as np

from .features import FEATURE_NAMES, RATE_COLUMNS, F

# "watch" is the duration-debiased watch-time quantile and "effective_view" a view above its duration
# bucket's threshold (D2Q, see training.d2q); before training, the prior reads both off the watch ratio.
TASKS: tuple[str, ...] = ("watch", "complete", "like", "share", "comment", "follow", "skip", "negative",
                          "effective_view")
_RATE_OF_TASK = {"effective_view": "watch"}
# How the user-item affinity moves each outcome: liked content is watched more and skipped less. Hides and
# reports are mostly about the item itself, so affinity only nudges them (a liked topic cannot excuse abuse).
_AFFINITY_DIRECTION = np.array([1.0, 1.0, 1.0, 0.7, 0.7, 1.0, -1.0, -0.3, 1.0], dtype=np.float32)
# Collaborative evidence and reach say nothing about abuse: they leave P(negative) alone.
_EVIDENCE_DIRECTION = np.array([1.0, 1.0, 1.0, 0.7, 0.7, 1.0, -1.0, 0.0, 1.0], dtype=np.float32)
_EPS = 1e-4


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1.0 - _EPS)
    return np.log(p / (1.0 - p))


def affinity(X: np.ndarray) -> np.ndarray:
    """How well an item matches the user's interests, roughly in [-1.5, 2]; 0 for an unknown user."""
    return (
        0.5 * X[:, F["sim_short"]]
        + 0.4 * X[:, F["sim_long"]]
        - 0.6 * X[:, F["sim_negative"]]
        + 0.3 * X[:, F["topic_short"]]
        + 0.3 * X[:, F["topic_long"]]
        + 0.2 * X[:, F["hashtag"]]
        + 0.2 * X[:, F["creator"]]
        + 0.3 * X[:, F["follows_creator"]]
    )


def prior_logits(X: np.ndarray, gain: float, collab_gain: float = 0.0, popularity_gain: float = 0.0) -> np.ndarray:
    """(n, len(TASKS)) logits from item rates shifted by user-item affinity, by collaborative evidence (the
    item-to-item score from the user's history) and by how many people engaged with the item at all: a rate
    alone ranks an item liked by 3 of 4 viewers above one liked by 300 of 500."""
    rates = np.stack([X[:, RATE_COLUMNS[_RATE_OF_TASK.get(task, task)]] for task in TASKS], axis=1)
    evidence = collab_gain * X[:, F["collab"]] + popularity_gain * X[:, F["log_positives"]]
    return (logit(rates) + gain * affinity(X)[:, None] * _AFFINITY_DIRECTION[None, :]
            + evidence[:, None] * _EVIDENCE_DIRECTION[None, :])


class RankerModel:
    def __init__(
        self,
        weights: np.ndarray | None = None,
        steps: int = 0,
        affinity_gain: float = 1.25,
        collab_gain: float = 0.0,
        popularity_gain: float = 0.0,
    ) -> None:
        shape = (len(TASKS), len(FEATURE_NAMES))
        self.weights = np.zeros(shape, dtype=np.float64) if weights is None else weights.astype(np.float64)
        if self.weights.shape != shape:
            raise ValueError(f"weights have shape {self.weights.shape}, expected {shape}")
        self.steps = steps  # SGD steps taken over the model's lifetime (drives learning-rate decay)
        self.affinity_gain = affinity_gain
        self.collab_gain = collab_gain
        self.popularity_gain = popularity_gain

    def logits(self, X: np.ndarray) -> np.ndarray:
        return prior_logits(X, self.affinity_gain, self.collab_gain, self.popularity_gain) + X @ self.weights.T

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(n, len(TASKS)) probabilities; the "watch" column is the expected watch ratio."""
        return sigmoid(self.logits(X))

    def copy(self) -> RankerModel:
        return RankerModel(self.weights.copy(), self.steps, self.affinity_gain, self.collab_gain,
                           self.popularity_gain)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        meta = {"tasks": TASKS, "features": FEATURE_NAMES, "steps": self.steps, "affinity_gain": self.affinity_gain,
                "collab_gain": self.collab_gain, "popularity_gain": self.popularity_gain}
        np.savez(buffer, weights=self.weights, meta=np.array(json.dumps(meta)))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> RankerModel:
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if tuple(meta["tasks"]) != TASKS:
                raise ValueError("stored ranker was trained for different tasks")
            weights = data["weights"]
            stored = tuple(meta["features"])
            if stored != FEATURE_NAMES:
                # An older feature set: keep the weights of features that still exist; new ones start at 0.
                unknown = set(stored) - set(FEATURE_NAMES)
                if unknown:
                    raise ValueError(f"stored ranker uses features that no longer exist: {sorted(unknown)}")
                mapped = np.zeros((len(TASKS), len(FEATURE_NAMES)))
                mapped[:, [F[name] for name in stored]] = weights
                weights = mapped
            return cls(weights, int(meta["steps"]), float(meta["affinity_gain"]),
                       float(meta.get("collab_gain", 0.0)), float(meta.get("popularity_gain", 0.0)))
