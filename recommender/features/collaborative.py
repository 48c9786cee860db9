"""Collaborative evidence: item-to-item weights (fitted by the ``item_neighbors`` job) summed over every item
the user engaged with, recency-weighted, into one score per catalogue row.

The same per-user scores feed the ``item2item`` candidate source, the ranker's ``collab`` features and the
prior, so collaborative evidence that found a candidate is not thrown away when it is ranked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config import RecommenderConfig
from .users import UserState

CACHE_SECONDS = 300.0  # anchor recency weights move slowly; new engagement bumps the cache key anyway


@dataclass(frozen=True)
class ItemSimilarity:
    """Sparse item-to-item weights by item id, stored CSR by anchor: ``weights[indptr[a]:indptr[a+1]]`` are
    how much engaging with anchor ``a`` says about items ``neighbors[indptr[a]:indptr[a+1]]``."""

    method: str  # "ease", "cosine" or "none"
    ids: tuple[str, ...]
    index: dict[str, int]
    indptr: np.ndarray  # (len(ids) + 1,) int64
    neighbors: np.ndarray  # int32 positions in ids, best first within each anchor
    weights: np.ndarray  # float32
    version: int = 0

    @classmethod
    def empty(cls) -> ItemSimilarity:
        return cls("none", (), {}, np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def pairs(self) -> int:
        return len(self.neighbors)

    def neighbors_of(self, item_id: str, limit: int) -> list[tuple[str, float]]:
        anchor = self.index.get(item_id)
        if anchor is None:
            return []
        start, end = self.indptr[anchor], min(self.indptr[anchor + 1], self.indptr[anchor] + limit)
        return [(self.ids[j], round(float(w), 5)) for j, w in
                zip(self.neighbors[start:end].tolist(), self.weights[start:end].tolist(), strict=True)]


def from_pairs(method: str, ids: list[str], left: np.ndarray, right: np.ndarray, weight: np.ndarray, k: int,
               version: int) -> ItemSimilarity:
    """Keep each anchor's ``k`` largest weights of a sparse pair list (anchor ``left`` → item ``right``)."""
    order = np.lexsort((-weight, left))
    left, right, weight = left[order], right[order], weight[order]
    starts = np.searchsorted(left, np.arange(len(ids)))
    rank = np.arange(len(left)) - starts[left] if len(left) else np.zeros(0, np.int64)
    keep = (rank < k) & (weight > 0)
    left, right, weight = left[keep], right[keep], weight[keep]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(left, minlength=len(ids)))]).astype(np.int64)
    return ItemSimilarity(method, tuple(ids), {i: p for p, i in enumerate(ids)}, indptr,
                          right.astype(np.int32), weight.astype(np.float32), version)


def catalog_rows(similarity: ItemSimilarity, row_of: dict[str, int]) -> np.ndarray:
    """Each of ``similarity.ids``' catalogue row, -1 for items the catalogue does not hold (O(len(similarity)),
    cached by the state until the catalogue or the neighbours change)."""
    return np.fromiter((row_of.get(i, -1) for i in similarity.ids), dtype=np.int64, count=len(similarity.ids))


class RowValues:
    """Values for a few catalogue rows, 0 for every other row; indexed by rows like a dense per-row vector, so a
    user's scores cost what their neighbours number, not what the catalogue holds."""

    __slots__ = ("rows", "values")

    def __init__(self, rows: np.ndarray, values: np.ndarray, order: np.ndarray | None = None) -> None:
        """``order``: ``rows``' stable argsort, when the caller has it already (two RowValues over the same rows)."""
        if order is None:
            order = np.argsort(rows, kind="stable")
        self.rows = rows[order]
        self.values = values[order]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, rows) -> np.ndarray:  # noqa: ANN001 - a row or an array of rows
        rows = np.asarray(rows, dtype=np.int64)
        if not len(self.rows):
            return np.zeros(rows.shape, dtype=self.values.dtype)
        at = np.minimum(np.searchsorted(self.rows, rows), len(self.rows) - 1)
        return np.where(self.rows[at] == rows, self.values[at], 0).astype(self.values.dtype)

    def nonzero(self) -> tuple[np.ndarray, np.ndarray]:
        keep = self.values != 0
        return self.rows[keep], self.values[keep]


@dataclass(frozen=True)
class UserCollaborative:
    """Per catalogue row: ``score`` in [-1, 1] (summed weights / the user's best score over the catalogue, so
    it does not depend on which candidates are being ranked) and ``support`` (how many anchors point to it),
    both sparse (rows no anchor points to read 0)."""

    score: RowValues
    support: RowValues
    anchor_rows: frozenset[int]


def anchor_weights(user: UserState, index: dict[str, int], now: float, config: RecommenderConfig
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the user's positively engaged items in ``index`` and their weights: log(1 + net engagement)
    decayed by age and by how many newer engagements followed (tastes drift with what one watched last, even
    within a single binge, when time alone barely separates items)."""
    rate = math.log(2.0) / config.cf_anchor_half_life
    rank_decay = 0.5 ** (1.0 / config.cf_anchor_rank_half_life)
    positions, weights = [], []
    for item_id, (net, at) in reversed(user.engaged.items()):  # most recent first
        if net <= 0:
            continue
        position = index.get(item_id)
        if position is None:
            continue
        positions.append(position)
        weights.append(math.log1p(net) * math.exp(-rate * max(0.0, now - at)) * rank_decay ** len(weights))
        if len(positions) >= config.cf_max_anchors:
            break
    return np.array(positions, dtype=np.int64), np.array(weights, dtype=np.float64)


def for_user(similarity: ItemSimilarity, sim_rows: np.ndarray, user: UserState, now: float,
             config: RecommenderConfig, catalog_version: int) -> UserCollaborative | None:
    """The user's collaborative scores for every catalogue row (``sim_rows``: each of ``similarity.ids``'
    catalogue row or -1, see ``catalog_rows``); None when there is nothing to go on. Cached on the user."""
    if not similarity.pairs or not user.engaged:
        return None
    key = (user.engaged_version, similarity.version, catalog_version, int(now // CACHE_SECONDS),
           config.cf_anchor_half_life, config.cf_anchor_rank_half_life, config.cf_max_anchors)
    cached = user.collab_cache
    if cached is not None and cached[0] == key:
        return cached[1]
    result = _compute(similarity, sim_rows, user, now, config)
    user.collab_cache = (key, result)
    return result


def _compute(similarity: ItemSimilarity, sim_rows: np.ndarray, user: UserState, now: float,
             config: RecommenderConfig) -> UserCollaborative | None:
    anchors, weights = anchor_weights(user, similarity.index, now, config)
    if not len(anchors):
        return None
    starts, ends = similarity.indptr[anchors], similarity.indptr[anchors + 1]
    lengths = ends - starts
    total = int(lengths.sum())
    if not total:
        return None
    # Each anchor's slice of the CSR arrays, back to back: one arange, shifted per anchor (no array per anchor).
    take = np.arange(total) + np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    # Only the items some anchor points to: work in the user's neighbours, not in the catalogue.
    found, inverse = np.unique(similarity.neighbors[take], return_inverse=True)
    scores = np.bincount(inverse, weights=similarity.weights[take] * np.repeat(weights, lengths),
                         minlength=len(found))
    support = np.bincount(inverse, minlength=len(found)).astype(np.float32)
    # Already engaged with: evidence about the others, not about themselves (``found`` is sorted: a binary search).
    at = np.minimum(np.searchsorted(found, anchors), len(found) - 1)
    scores[at[found[at] == anchors]] = 0.0
    best = float(scores.max())
    if best <= 0:
        return None
    rows = sim_rows[found]
    known = rows >= 0
    rows = rows[known]
    order = np.argsort(rows, kind="stable")  # one sort for both
    score = RowValues(rows, np.clip(scores[known] / best, -1.0, 1.0).astype(np.float32), order)
    anchor_rows = sim_rows[anchors]
    return UserCollaborative(score, RowValues(rows, support[known], order),
                             frozenset(anchor_rows[anchor_rows >= 0].tolist()))


# ----------------------------------------------------------------------------------------------
# EASE (Steck 2019): B = I − P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹, diagonal zeroed. ``weights[j, c]`` =
# −P[j, c] / P[c, c]: what engaging with anchor j says about item c.

EASE_BLOCK_CELLS = 4_000_000  # anchors × items per block: weights are never held whole


def _top_k_block(weights: np.ndarray, first_row: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's ``k`` largest positive weights (rows are anchors ``first_row``…, self excluded):
    (counts per row, neighbour columns best first, values)."""
    rows = np.arange(len(weights))
    weights[rows, first_row + rows] = -np.inf
    k = min(k, weights.shape[1] - 1)
    top = np.argpartition(-weights, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(weights, top, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    top, values = np.take_along_axis(top, order, axis=1), np.take_along_axis(values, order, axis=1)
    keep = values > 0
    return keep.sum(axis=1), top[keep].astype(np.int32), values[keep].astype(np.float32)


def _assemble(method: str, ids: list[str], blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
              version: int) -> ItemSimilarity:
    counts = np.concatenate([b[0] for b in blocks]) if blocks else np.zeros(len(ids), np.int64)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    neighbors = np.concatenate([b[1] for b in blocks]) if blocks else np.zeros(0, np.int32)
    values = np.concatenate([b[2] for b in blocks]) if blocks else np.zeros(0, np.float32)
    return ItemSimilarity(method, tuple(ids), {i: p for p, i in enumerate(ids)}, indptr, neighbors, values, version)


def basket_matrix(baskets: list[np.ndarray], n_items: int):  # noqa: ANN201 - scipy.sparse.csr_matrix
    """The binary user × item matrix of the baskets (each basket: one user's engaged item positions)."""
    from scipy import sparse

    rows = np.repeat(np.arange(len(baskets)), [len(b) for b in baskets])
    columns = np.concatenate(baskets) if baskets else np.zeros(0, np.int64)
    matrix = sparse.csr_matrix((np.ones(len(columns)), (rows, columns)), shape=(len(baskets), n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def ease_primal(ids: list[str], baskets: list[np.ndarray], lam: float, k: int, version: int) -> ItemSimilarity:
    """EASE through the item-space inverse (n_items × n_items): the cheap form when items ≤ users."""
    X = basket_matrix(baskets, len(ids))
    gram = (X.T @ X).toarray()
    gram[np.diag_indices(len(ids))] += lam
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)[None, :]
    return _assemble("ease", ids, [_top_k_block(weights, 0, k)] if k and len(ids) > 1 else [], version)


def ease_dual(ids: list[str], baskets: list[np.ndarray], lam: float, k: int, version: int) -> ItemSimilarity:
    """The same exact EASE weights through the user-space inverse (Woodbury), cheap when users < items:
    P = (XᵀX + λI)⁻¹ = (I − Xᵀ(XXᵀ + λI)⁻¹X) / λ. Only a (users × items) matrix and one block of anchors
    are ever held, so memory is O(users · items) instead of O(items²)."""
    from scipy.linalg import cho_factor, cho_solve

    n = len(ids)
    X = basket_matrix(baskets, n)
    kernel = (X @ X.T).toarray()
    kernel[np.diag_indices(len(baskets))] += lam
    solved = cho_solve(cho_factor(kernel), X.toarray())  # (XXᵀ + λI)⁻¹ X, users × items
    diagonal = (1.0 - np.asarray(X.multiply(solved).sum(axis=0)).ravel()) / lam  # P[c, c]
    XT = X.T.tocsr()
    blocks = []
    if k and n > 1:
        rows = max(1, EASE_BLOCK_CELLS // n)
        for start in range(0, n, rows):
            stop = min(n, start + rows)
            p_rows = -np.asarray(XT[start:stop] @ solved) / lam  # P[j, :] off the diagonal (B's diagonal is 0)
            blocks.append(_top_k_block(-p_rows / diagonal[None, :], start, k))
    return _assemble("ease", ids, blocks, version)
