"""The value model: one score per candidate from predicted outcome probabilities."""

from __future__ import annotations

import numpy as np

from .model import TASKS


def value_scores(probabilities: np.ndarray, weights: dict[str, float]) -> np.ndarray:
    """Σ_task w_task · P(task). Unknown task names in ``weights`` are ignored; missing ones weigh 0."""
    vector = np.array([weights.get(task, 0.0) for task in TASKS], dtype=np.float64)
    return probabilities @ vector


def trend_boosted(scores: np.ndarray, trend: np.ndarray, beta: float) -> np.ndarray:
    """score × (1 + β·trend), applied so that a boost always raises the score, negative ones included."""
    factor = 1.0 + beta * np.clip(trend, 0.0, None)
    return np.where(scores >= 0, scores * factor, scores / factor)
