"""Incremental mini-batch training (BCE + L2, decaying learning rate) and held-out evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ranking.model import TASKS, RankerModel


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve via the rank-sum statistic, ties averaged; None without both classes."""
    labels = np.asarray(labels) > 0.5
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = np.asarray(scores)[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    i = 0
    while i < len(sorted_scores):
        j = i
        while j + 1 < len(sorted_scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


@dataclass(frozen=True)
class Evaluation:
    log_loss: float  # mean over tasks
    auc: float | None  # mean over tasks that have both classes in the holdout
    per_task: dict[str, dict[str, float | None]]

    def to_dict(self) -> dict:
        return {"log_loss": self.log_loss, "auc": self.auc, "per_task": self.per_task}


def evaluate(model: RankerModel, X: np.ndarray, Y: np.ndarray) -> Evaluation:
    P = model.predict(X)
    per_task: dict[str, dict[str, float | None]] = {}
    aucs: list[float] = []
    for t, task in enumerate(TASKS):
        auc = roc_auc(Y[:, t], P[:, t])
        per_task[task] = {"log_loss": log_loss(Y[:, t], P[:, t]), "auc": auc, "positives": float((Y[:, t] > 0.5).sum())}
        if auc is not None:
            aucs.append(auc)
    mean_loss = float(np.mean([v["log_loss"] for v in per_task.values()]))
    return Evaluation(mean_loss, float(np.mean(aucs)) if aucs else None, per_task)


def train_incremental(
    model: RankerModel,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    batch_size: int,
    epochs: int,
    learning_rate: float,
    decay: float,
    l2: float,
    seed: int,
) -> RankerModel:
    """A copy of ``model`` after mini-batch SGD on (X, Y); η_t = η0 / (1 + decay·t) over lifetime steps."""
    trained = model.copy()
    rng = np.random.default_rng(seed)
    X64 = X.astype(np.float64)
    Y64 = Y.astype(np.float64)
    for _ in range(epochs):
        order = rng.permutation(len(X64))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            xb, yb = X64[batch], Y64[batch]
            error = trained.predict(xb) - yb  # dBCE/dlogit
            gradient = error.T @ xb / len(batch) + l2 * trained.weights
            trained.weights -= learning_rate / (1.0 + decay * trained.steps) * gradient
            trained.steps += 1
    return trained
