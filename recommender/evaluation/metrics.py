"""Ranking metrics with one uniform signature: ``metric(truth, predictions, k) -> float``.

* ``truth``: ``{user: collection of held-out relevant items}`` (a :class:`Relevant` adds the size
  of the user's candidate universe, used by AUC);
* ``predictions``: ``{user: ranked list of item ids}`` (users missing here get an empty list);
* ``k``: the cut-off.

The value is averaged over the users in ``truth``. Metrics that are means of per-user values
(all but coverage) also expose ``metric.per_user(truth, predictions, k) -> np.ndarray``, aligned
with ``list(truth)``, which the paired bootstrap uses. Metrics that need context (catalogue,
item vectors, popularity) are built by a factory that binds it and returns a metric with the
same signature.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Protocol

import numpy as np

__all__ = [
    "Metric",
    "Relevant",
    "auc",
    "make_coverage",
    "make_ild",
    "make_novelty",
    "ndcg",
    "precision",
    "recall",
]

Truth = Mapping[str, Collection[str]]
Predictions = Mapping[str, Sequence[str]]


class Metric(Protocol):
    def __call__(self, truth: Truth, predictions: Predictions, k: int) -> float: ...


class Relevant(frozenset):
    """Held-out relevant items of one user, plus ``universe``: how many items the ranker could
    rank for that user (catalogue minus the user's training items). Used by :func:`auc`."""

    universe: int

    def __new__(cls, items: Iterable[str] = (), universe: int = 0):
        obj = super().__new__(cls, items)
        obj.universe = int(universe)
        return obj


def _per_user_metric(fn: Callable[[Collection[str], Sequence[str], int], float]):
    """Turn a one-user function into a metric with the uniform signature and a ``per_user``."""

    def per_user(truth: Truth, predictions: Predictions, k: int) -> np.ndarray:
        return np.array([fn(rel, predictions.get(u, ()), k) for u, rel in truth.items()], dtype=float)

    def metric(truth: Truth, predictions: Predictions, k: int) -> float:
        values = per_user(truth, predictions, k)
        return float(values.mean()) if values.size else 0.0

    metric.per_user = per_user  # type: ignore[attr-defined]
    metric.single = fn  # type: ignore[attr-defined]
    metric.__name__ = fn.__name__.lstrip("_")
    metric.__doc__ = fn.__doc__
    return metric


def _ndcg(rel: Collection[str], preds: Sequence[str], k: int) -> float:
    """Binary-relevance NDCG@k: sum of 1/log2(rank+1) over hits, over the ideal for min(|rel|, k) hits."""
    if not rel or k <= 0:
        return 0.0
    dcg = sum(1.0 / math.log2(r + 2) for r, item in enumerate(preds[:k]) if item in rel)
    idcg = sum(1.0 / math.log2(r + 2) for r in range(min(len(rel), k)))
    return dcg / idcg


def _recall(rel: Collection[str], preds: Sequence[str], k: int) -> float:
    """Recall@k: hits in the top k over the number of relevant items."""
    if not rel:
        return 0.0
    return len(set(preds[:k]) & set(rel)) / len(rel)


def _precision(rel: Collection[str], preds: Sequence[str], k: int) -> float:
    """Precision@k: hits in the top k over k."""
    if k <= 0:
        return 0.0
    return len(set(preds[:k]) & set(rel)) / k


ndcg = _per_user_metric(_ndcg)
recall = _per_user_metric(_recall)
precision = _per_user_metric(_precision)


def _auc_metric() -> Metric:
    def single(rel: Collection[str], preds: Sequence[str], k: int) -> float:
        universe = getattr(rel, "universe", 0)
        return _auc_core(set(rel), preds, k, universe)

    single.__name__ = "auc"
    single.__doc__ = """AUC of the ranking: the chance a held-out relevant item is ranked above a non-relevant one.

    The ranking is the first ``k`` predictions; every item of the user's universe that is not in
    it is tied below the list (ties count one half). The universe size comes from
    :class:`Relevant.universe`; without it the universe is the list plus the relevant items.
    """
    return _per_user_metric(single)


def _auc_core(rel: set[str], preds: Sequence[str], k: int, universe: int) -> float:
    ranked = list(dict.fromkeys(preds[:k]))
    size = max(universe, len(set(ranked) | rel))
    n_pos = len(rel)
    n_neg = size - n_pos
    if n_pos == 0 or n_neg <= 0:
        return 0.5
    total = 0.0
    pos_above = 0
    neg_in_list = 0
    for r, item in enumerate(ranked):
        if item in rel:
            total += n_neg - (r - pos_above)
            pos_above += 1
        else:
            neg_in_list += 1
    total += (n_pos - pos_above) * 0.5 * (n_neg - neg_in_list)
    return total / (n_pos * n_neg)


auc = _auc_metric()


def make_coverage(catalogue: Collection[str]) -> Metric:
    """Catalogue coverage@k: share of the catalogue that appears in at least one user's top k."""
    cat = frozenset(catalogue)

    def coverage(truth: Truth, predictions: Predictions, k: int) -> float:
        if not cat:
            return 0.0
        shown: set[str] = set()
        for u in truth:
            shown.update(predictions.get(u, ())[:k])
        return len(shown & cat) / len(cat)

    return coverage


def make_ild(vectors: Mapping[str, np.ndarray]) -> Metric:
    """Intra-list diversity@k: mean pairwise cosine distance (1 - cos) within each top-k list.

    Lists with fewer than two items with a vector score 0.
    """
    unit = {}
    for item, v in vectors.items():
        v = np.asarray(v, dtype=float)
        n = np.linalg.norm(v)
        unit[item] = v / n if n > 0 else v

    def single(rel: Collection[str], preds: Sequence[str], k: int) -> float:
        vecs = [unit[i] for i in preds[:k] if i in unit]
        m = len(vecs)
        if m < 2:
            return 0.0
        mat = np.vstack(vecs)
        sims = mat @ mat.T
        off = (sims.sum() - np.trace(sims)) / (m * (m - 1))
        return float(1.0 - off)

    single.__name__ = "ild"
    return _per_user_metric(single)


def make_novelty(popularity: Mapping[str, int], n_users: int) -> Metric:
    """Novelty@k: mean self-information -log2(p) of the top-k items, where p is the share of the
    ``n_users`` training users that interacted with the item (items never seen count once)."""
    n = max(int(n_users), 1)

    def single(rel: Collection[str], preds: Sequence[str], k: int) -> float:
        top = preds[:k]
        if not top:
            return 0.0
        return float(np.mean([-math.log2(max(popularity.get(i, 0), 1) / n) for i in top]))

    single.__name__ = "novelty"
    return _per_user_metric(single)
