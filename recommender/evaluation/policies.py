"""The ``Policy`` protocol the harness drives, and the baselines.

A policy is fitted on a training log, asked for rankings, and told about new events as they
happen (the simulator calls ``observe`` after every swipe). Baselines: random, popularity,
recent popularity, ItemKNN, EASE, RP3beta, and ALS / BPR from the ``implicit`` package (CPU, 1 thread).

Every baseline sees the same graded events as ours (views with their watch ratio, likes, skips, hides; which
of them count is the ``signal`` knob of its tuning grid), keeps a live popularity count of them, serves that
popularity to a user with no signal yet, and breaks ties in its own scores by it (never by item id).
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy import sparse

from .data import Interaction, ItemInfo

__all__ = [
    "ALSPolicy",
    "BPRPolicy",
    "EASEPolicy",
    "ItemKNNPolicy",
    "MatrixPolicy",
    "Policy",
    "PopularityPolicy",
    "RP3BetaPolicy",
    "RandomPolicy",
    "RecentPopularityPolicy",
    "make_baseline",
    "signal_weight",
]


@runtime_checkable
class Policy(Protocol):
    """What the harness needs from a recommender."""

    name: str

    def fit(self, train: Sequence[Interaction], items: Mapping[str, ItemInfo], now: float) -> None:
        """Learn from the training log; ``items`` is the whole catalogue; ``now`` the current time."""

    def recommend(
        self, user: str, k: int, exclude: frozenset[str] = frozenset(), now: float | None = None
    ) -> list[str]:
        """Top-``k`` item ids for ``user``, none of them in ``exclude``."""

    def observe(self, event: Interaction) -> None:
        """A new event happened (the policy may update itself immediately)."""


def signal_weight(x: Interaction, signal: str) -> float:
    """Weight of an interaction in a user-item matrix.

    * ``positive``: 1 for positive engagement (like / complete view), else 0;
    * ``all``: 1 for any interaction that is not a hide (classic implicit feedback);
    * ``graded``: max(strength, 0) (likes 1, partial views 0.3, skips 0).
    """
    if signal == "positive":
        return 1.0 if x.positive else 0.0
    if signal == "all":
        return 0.0 if x.hidden else 1.0
    if signal == "graded":
        return max(x.strength, 0.0)
    raise ValueError(f"unknown signal {signal!r}")


def _top_k(
    scores: np.ndarray, k: int, banned: np.ndarray | None = None, tie_break: np.ndarray | None = None
) -> np.ndarray:
    """Indices of the ``k`` best scores; equal scores are ordered by ``tie_break`` (higher first), then index."""
    scores = scores.astype(float, copy=True)
    if banned is not None and banned.size:
        scores[banned] = -np.inf
    n_ok = int(np.isfinite(scores).sum())
    k = min(k, n_ok)
    if k <= 0:
        return np.zeros(0, dtype=int)
    order = np.arange(scores.size)
    secondary = tie_break if tie_break is not None else np.zeros(scores.size)
    # argpartition would cut ties arbitrarily at the k-th score: take every item tied with it, then sort
    kth = np.partition(-scores, k - 1)[k - 1]
    cand = order[-scores <= kth]
    ranked = cand[np.lexsort((cand, -secondary[cand], -scores[cand]))]
    return ranked[:k]


class MatrixPolicy:
    """Base for baselines that score every item for a user from a user-item matrix.

    Keeps a live per-user history (``observe`` adds to it) so baselines react to events within a
    session, like ours does.
    """

    name = "matrix"

    def __init__(self, signal: str = "all", **params: Any) -> None:
        self.signal = signal
        self.params = {"signal": signal, **params}
        self.item_ids: list[str] = []
        self.item_index: dict[str, int] = {}
        self.user_index: dict[str, int] = {}
        self.history: dict[str, dict[int, float]] = defaultdict(dict)
        self.popularity = np.zeros(0)
        self.now = 0.0

    # -- matrix helpers -------------------------------------------------------------------
    def _index(self, train: Sequence[Interaction], items: Mapping[str, ItemInfo]) -> None:
        self.item_ids = sorted(items)
        self.item_index = {i: n for n, i in enumerate(self.item_ids)}
        users = sorted({x.user_id for x in train})
        self.user_index = {u: n for n, u in enumerate(users)}
        self.history = defaultdict(dict)
        self.popularity = np.zeros(len(self.item_ids))
        for x in train:
            self._add(x)

    def _add(self, x: Interaction) -> None:
        j = self.item_index.get(x.item_id)
        if j is None:
            return
        # the fallback / tie-break popularity counts graded engagement whatever the policy's own signal
        self.popularity[j] += signal_weight(x, "graded")
        w = signal_weight(x, self.signal)
        row = self.history[x.user_id]
        if w > 0:
            row[j] = max(row.get(j, 0.0), w)
        elif j in row and x.hidden:
            del row[j]

    def _matrix(self) -> sparse.csr_matrix:
        rows, cols, vals = [], [], []
        for u, n in self.user_index.items():
            for j, w in self.history.get(u, {}).items():
                rows.append(n)
                cols.append(j)
                vals.append(w)
        shape = (len(self.user_index), len(self.item_ids))
        return sparse.csr_matrix((np.asarray(vals, dtype=np.float32), (rows, cols)), shape=shape)

    def _user_vector(self, user: str) -> np.ndarray:
        vec = np.zeros(len(self.item_ids), dtype=np.float32)
        for j, w in self.history.get(user, {}).items():
            vec[j] = w
        return vec

    # -- Policy ---------------------------------------------------------------------------
    def fit(self, train: Sequence[Interaction], items: Mapping[str, ItemInfo], now: float) -> None:
        self.now = now
        self._index(train, items)
        self._fit_model()

    def _fit_model(self) -> None:
        pass

    def scores(self, user: str) -> np.ndarray:
        raise NotImplementedError

    def recommend(
        self, user: str, k: int, exclude: frozenset[str] = frozenset(), now: float | None = None
    ) -> list[str]:
        if now is not None:
            self.now = now
        banned = np.fromiter((self.item_index[i] for i in exclude if i in self.item_index), dtype=int)
        scores = self.scores(user) if self.has_signal(user) else self.popularity
        return [self.item_ids[j] for j in _top_k(scores, k, banned, self.popularity)]

    def has_signal(self, user: str) -> bool:
        """Whether the user has any engagement this policy's signal counts (else: popularity)."""
        return bool(self.history.get(user))

    def observe(self, event: Interaction) -> None:
        self.now = max(self.now, event.timestamp)
        self._add(event)


class RandomPolicy(MatrixPolicy):
    """Uniformly random items (seeded)."""

    name = "random"

    def __init__(self, seed: int = 0, **params: Any) -> None:
        super().__init__(**params)
        self.rng = random.Random(seed)

    def scores(self, user: str) -> np.ndarray:
        return np.asarray([self.rng.random() for _ in self.item_ids])

    def has_signal(self, user: str) -> bool:
        return True  # random for everyone, cold or not


class PopularityPolicy(MatrixPolicy):
    """Most-engaged items overall (counts of weighted interactions; observe updates counts)."""

    name = "popularity"

    def _fit_model(self) -> None:
        self.counts = np.zeros(len(self.item_ids))
        for row in self.history.values():
            for j, w in row.items():
                self.counts[j] += w

    def observe(self, event: Interaction) -> None:
        j = self.item_index.get(event.item_id)
        if j is not None:
            self.counts[j] += signal_weight(event, self.signal)
        super().observe(event)

    def scores(self, user: str) -> np.ndarray:
        return self.counts

    def has_signal(self, user: str) -> bool:
        return True  # the same list for everyone


class RecentPopularityPolicy(MatrixPolicy):
    """Popularity with exponential time decay (half-life in days), measured at ``now``."""

    name = "recent_popularity"

    def __init__(self, half_life_days: float = 7.0, **params: Any) -> None:
        super().__init__(half_life_days=half_life_days, **params)
        self.tau = half_life_days * 86400.0 / math.log(2)

    def fit(self, train: Sequence[Interaction], items: Mapping[str, ItemInfo], now: float) -> None:
        super().fit(train, items, now)
        self.ref = now
        self.counts = np.zeros(len(self.item_ids))
        for x in train:
            self.observe_count(x)

    def observe_count(self, x: Interaction) -> None:
        j = self.item_index.get(x.item_id)
        if j is not None:
            w = signal_weight(x, self.signal)
            self.counts[j] += w * math.exp(max(min((x.timestamp - self.ref) / self.tau, 50.0), -700.0))

    def observe(self, event: Interaction) -> None:
        self.observe_count(event)
        super().observe(event)

    def scores(self, user: str) -> np.ndarray:
        return self.counts

    def has_signal(self, user: str) -> bool:
        return True


class ItemKNNPolicy(MatrixPolicy):
    """Item-based CF: cosine similarity between item columns (with shrinkage), top-``neighbours``
    per item; a user's score is the sum of similarities to the items in their history."""

    name = "itemknn"

    def __init__(self, neighbours: int = 100, shrink: float = 10.0, **params: Any) -> None:
        super().__init__(neighbours=neighbours, shrink=shrink, **params)
        self.neighbours = neighbours
        self.shrink = shrink

    def _fit_model(self) -> None:
        x = self._matrix()
        xb = (x > 0).astype(np.float32)
        co = (xb.T @ xb).toarray()
        norms = np.sqrt(np.diag(co))
        sim = co / (np.outer(norms, norms) + self.shrink + 1e-9)
        np.fill_diagonal(sim, 0.0)
        n = sim.shape[0]
        if self.neighbours < n:
            cut = np.argpartition(-sim, self.neighbours, axis=0)[self.neighbours :, :]
            np.put_along_axis(sim, cut, 0.0, axis=0)
        self.sim = sim.astype(np.float32)

    def scores(self, user: str) -> np.ndarray:
        return self._user_vector(user) @ self.sim


class EASEPolicy(MatrixPolicy):
    """EASE (Steck 2019): closed-form item-item regression with zero diagonal."""

    name = "ease"

    def __init__(self, lam: float = 250.0, **params: Any) -> None:
        super().__init__(lam=lam, **params)
        self.lam = lam

    def _fit_model(self) -> None:
        x = self._matrix()
        g = (x.T @ x).toarray().astype(np.float64)
        g[np.diag_indices_from(g)] += self.lam
        p = np.linalg.inv(g)
        b = p / (-np.diag(p))
        np.fill_diagonal(b, 0.0)
        self.b = b.astype(np.float32)

    def scores(self, user: str) -> np.ndarray:
        return self._user_vector(user) @ self.b


class RP3BetaPolicy(MatrixPolicy):
    """RP3beta (Paudel et al. 2017): a 3-step random walk user -> item -> user -> item with transition
    probabilities raised to ``alpha`` and each target item divided by its popularity to the ``beta``;
    the ``neighbours`` strongest links per item are kept (Dacrema et al. 2019's implementation)."""

    name = "rp3beta"

    def __init__(self, alpha: float = 1.0, beta: float = 0.5, neighbours: int = 100, **params: Any) -> None:
        super().__init__(alpha=alpha, beta=beta, neighbours=neighbours, **params)
        self.alpha, self.beta, self.neighbours = alpha, beta, neighbours

    def _fit_model(self) -> None:
        x = self._matrix()
        xb = (x > 0).astype(np.float64)
        user_deg = np.asarray(xb.sum(axis=1)).ravel()
        item_deg = np.asarray(xb.sum(axis=0)).ravel()
        p_ui = sparse.diags(1.0 / np.maximum(user_deg, 1.0)) @ xb
        p_iu = sparse.diags(1.0 / np.maximum(item_deg, 1.0)) @ xb.T.tocsr()
        if self.alpha != 1.0:
            p_ui, p_iu = p_ui.power(self.alpha), p_iu.power(self.alpha)
        w = (p_iu @ p_ui).toarray()
        w /= np.power(np.maximum(item_deg, 1.0), self.beta)[None, :]
        np.fill_diagonal(w, 0.0)
        if self.neighbours < w.shape[1]:
            cut = np.argpartition(-w, self.neighbours, axis=1)[:, self.neighbours :]
            np.put_along_axis(w, cut, 0.0, axis=1)
        self.w = w.astype(np.float32)

    def scores(self, user: str) -> np.ndarray:
        return (self._user_vector(user) > 0).astype(np.float32) @ self.w


def _single_thread_blas():
    try:
        from threadpoolctl import threadpool_limits

        return threadpool_limits(1, "blas")
    except Exception:  # pragma: no cover - threadpoolctl ships with scipy/implicit setups
        import contextlib

        return contextlib.nullcontext()


class ALSPolicy(MatrixPolicy):
    """Implicit ALS (Hu et al. 2008) from ``implicit`` (CPU, one thread).

    Users' factors are recomputed from their live history on every request (so events observed
    after fitting count immediately, and new users are folded in).
    """

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 2.0,
        iterations: int = 15,
        seed: int = 0,
        **params: Any,
    ) -> None:
        super().__init__(factors=factors, regularization=regularization, alpha=alpha, iterations=iterations,
                         **params)
        self.kw = dict(factors=factors, regularization=regularization, alpha=alpha, iterations=iterations)
        self.seed = seed

    def _fit_model(self) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        with _single_thread_blas():
            self.model = AlternatingLeastSquares(**self.kw, num_threads=1, random_state=self.seed)
            self.model.fit(self._matrix(), show_progress=False)
        self.item_factors = np.asarray(self.model.item_factors)
        self._cache: dict[str, np.ndarray] = {}

    def _user_factor(self, user: str) -> np.ndarray:
        row = sparse.csr_matrix(self._user_vector(user)[None, :])
        if row.nnz == 0:
            return np.zeros(self.item_factors.shape[1], dtype=np.float32)
        with _single_thread_blas():
            return np.asarray(self.model.recalculate_user(0, row))

    def scores(self, user: str) -> np.ndarray:
        return self.item_factors @ self._user_factor(user)


class BPRPolicy(MatrixPolicy):
    """BPR-MF (Rendle et al. 2009) from ``implicit`` (CPU, one thread). New users / new events are
    folded in as the mean of the factors of the items in their history."""

    name = "bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 100,
        seed: int = 0,
        **params: Any,
    ) -> None:
        super().__init__(factors=factors, learning_rate=learning_rate, regularization=regularization,
                         iterations=iterations, **params)
        self.kw = dict(factors=factors, learning_rate=learning_rate, regularization=regularization,
                       iterations=iterations)
        self.seed = seed

    def _fit_model(self) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        self.trained = self._matrix()
        with _single_thread_blas():
            self.model = BayesianPersonalizedRanking(**self.kw, num_threads=1, random_state=self.seed)
            self.model.fit(self.trained, show_progress=False)
        self.user_factors = np.asarray(self.model.user_factors)
        self.item_factors = np.asarray(self.model.item_factors)
        self.fitted_history = {u: dict(self.history.get(u, {})) for u in self.user_index}

    def scores(self, user: str) -> np.ndarray:
        n = self.user_index.get(user)
        if n is not None and self.history.get(user, {}) == self.fitted_history.get(user):
            return self.item_factors @ self.user_factors[n]
        hist = self.history.get(user, {})
        if not hist:
            return self.item_factors @ self.item_factors.mean(axis=0)
        # fold in: items in the history (implicit's item factors carry a bias column)
        idx = np.fromiter(hist, dtype=int)
        u = self.item_factors[idx].mean(axis=0)
        if n is not None:
            u = 0.5 * (u + self.user_factors[n])
        if self.item_factors.shape[1] == self.kw["factors"] + 1:
            u[-1] = 1.0  # implicit's BPR keeps the item bias in the last column (user side is 1)
        return self.item_factors @ u


_BASELINES = {
    cls.name: cls
    for cls in (
        RandomPolicy,
        PopularityPolicy,
        RecentPopularityPolicy,
        ItemKNNPolicy,
        EASEPolicy,
        RP3BetaPolicy,
        ALSPolicy,
        BPRPolicy,
    )
}


def make_baseline(name: str, **params: Any) -> MatrixPolicy:
    """Instantiate a baseline by name with the given hyper-parameters."""
    try:
        cls = _BASELINES[name]
    except KeyError as exc:
        raise ValueError(f"unknown baseline {name!r}; known: {sorted(_BASELINES)}") from exc
    policy = cls(**params)
    policy.name = name
    return policy
