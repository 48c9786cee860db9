"""Held-out evaluation of rankers (log loss, AUC, value-model NDCG) and the training labels they are judged
on (D2Q's debiased watch target)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ranking.model import TASKS
from ..ranking.value import value_scores
from .d2q import DurationBuckets, effective_views, watch_quantiles


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
    # average ranks (1-based) with ties sharing the mean of their positions
    _, inverse, counts = np.unique(np.asarray(scores, dtype=np.float64), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def session_ndcgs(values: np.ndarray, gains: np.ndarray, sessions: np.ndarray) -> np.ndarray:
    """NDCG per session of ranking each session's examples by predicted value, with the realised value (Σ w·label,
    floored at 0) as the gain; sessions with fewer than two examples or no gain are skipped. Which sessions count
    depends on the gains alone, so two models judged on the same labels get the same sessions in the same order."""
    gains = np.maximum(gains, 0.0)
    scores = []
    order = np.argsort(sessions, kind="stable")
    boundaries = np.flatnonzero(np.diff(sessions[order])) + 1
    for group in np.split(order, boundaries):
        if len(group) < 2 or gains[group].max() <= 0:
            continue
        discount = 1.0 / np.log2(np.arange(2, len(group) + 2))
        ranked = gains[group][np.argsort(-values[group], kind="stable")]
        ideal = np.sort(gains[group])[::-1]
        scores.append(float(ranked @ discount / (ideal @ discount)))
    return np.array(scores, dtype=np.float64)


def value_ndcg(values: np.ndarray, gains: np.ndarray, sessions: np.ndarray) -> float | None:
    """Mean of ``session_ndcgs``; None without a session that counts."""
    scores = session_ndcgs(values, gains, sessions)
    return float(scores.mean()) if len(scores) else None


@dataclass(frozen=True)
class Evaluation:
    log_loss: float  # mean over tasks
    auc: float | None  # mean over tasks that have both classes in the holdout
    per_task: dict[str, dict[str, float | None]]
    ndcg: float | None = None  # the value model's NDCG within held-out sessions
    session_ndcg: np.ndarray | None = None  # the same per session (session_ndcgs), for paired comparisons

    def to_dict(self) -> dict:
        return {"log_loss": self.log_loss, "auc": self.auc, "ndcg": self.ndcg, "per_task": self.per_task}


def evaluate(model, X: np.ndarray, Y: np.ndarray, sessions: np.ndarray | None = None,  # noqa: ANN001
             value_weights: dict[str, float] | None = None) -> Evaluation:
    """Held-out log loss and AUC per task (watch: AUC of a quantile above one half) and, given sessions and
    value weights, the value model's NDCG."""
    P = model.predict(X)
    per_task: dict[str, dict[str, float | None]] = {}
    aucs: list[float] = []
    for t, task in enumerate(TASKS):
        auc = roc_auc(Y[:, t], P[:, t])
        per_task[task] = {"log_loss": log_loss(Y[:, t], P[:, t]), "auc": auc, "positives": float((Y[:, t] > 0.5).sum())}
        if auc is not None:
            aucs.append(auc)
    mean_loss = float(np.mean([v["log_loss"] for v in per_task.values()]))
    ndcg, per_session = None, None
    if sessions is not None and value_weights is not None and len(X):
        per_session = session_ndcgs(value_scores(P, value_weights), value_scores(Y, value_weights), sessions)
        ndcg = float(per_session.mean()) if len(per_session) else None
    return Evaluation(mean_loss, float(np.mean(aucs)) if aucs else None, per_task, ndcg, per_session)


def ndcg_shortfall(candidate: Evaluation, baseline: Evaluation) -> tuple[float, float] | None:
    """The candidate's value NDCG minus the baseline's, paired over the same held-out sessions, and the standard
    error of that mean difference; None where either has no NDCG."""
    if candidate.session_ndcg is None or baseline.session_ndcg is None or not len(candidate.session_ndcg):
        return None
    differences = candidate.session_ndcg - baseline.session_ndcg
    error = float(differences.std(ddof=1) / np.sqrt(len(differences))) if len(differences) > 1 else 0.0
    return float(differences.mean()), error


def ndcg_credibly_worse(candidate: Evaluation, baseline: Evaluation, tolerance: float) -> bool:
    """Whether the candidate orders held-out sessions worse than the baseline by more than ``tolerance`` and by more
    than two standard errors of the paired difference. A day's held-out cards are a few dozen sessions, whose
    mean NDCG moves by ~0.01 between equally good models; a fixed tolerance alone refused candidates whose log loss
    and AUC were far better for a difference that sample cannot tell from zero."""
    paired = ndcg_shortfall(candidate, baseline)
    if paired is None:
        return False
    difference, error = paired
    return difference < -max(tolerance, 2.0 * error)


def debiased_labels(Y: np.ndarray, watch_seconds: np.ndarray, durations: np.ndarray, buckets: DurationBuckets
                    ) -> np.ndarray:
    """Y with the watch column replaced by the D2Q watch quantile and the effective-view column filled."""
    out = Y.copy()
    out[:, TASKS.index("watch")] = watch_quantiles(watch_seconds, durations, buckets)
    out[:, TASKS.index("effective_view")] = effective_views(watch_seconds, durations, buckets)
    return out
