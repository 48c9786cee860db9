"""Candidate fusion: a learned ordering of the candidates every source produced, trained on our own event log.

The engagement ranker learns what follows an impression (watch, like, skip...), but in a log where every
impression is something the user chose, nothing in it says *which* of today's candidates they will pick next.
This model learns exactly that, from history the engine already holds:

1. **Cut** each user's history: the prefix is what came before their last ``fusion_suffix_fraction`` of items,
   the suffix what followed (``cut_user_histories``); optionally also one global time cut (``cut_at_time``).
2. **Replay** the log without the suffixes into a shadow engine (the same ingest, statistics, item-to-item and
   interest jobs as the live one), ask the real candidate sources for each cut user at the cut, and build the
   features the live request builds (``features``): the ranker's feature row, each source's rank, item
   popularity over several windows, popularity where the user was last active, item age, user activity.
3. **Label** a candidate 1 when the user engaged with it positively (like, complete view, share, ...) in their
   suffix, and fit LightGBM's lambdarank (one query per user; one thread, deterministic, fixed seed).
4. **Promote** only if the ordering it would serve (``served_scores``) has a better NDCG@10 on held-out users than
   the current ordering's (the active fusion model's served ordering, or the engagement value model before one
   exists) by ``fusion_promotion_min_gain``; every version is kept and ``FusionRegistry.rollback`` restores an
   older one.

Serving (``pipeline._rank``, ``served_scores``): the active model's score on the ``fusion_score`` scale plus
``fusion_value_weight`` times the engagement value model's score orders the page. Nothing here imports the app:
the app's scheduler runs the job on its events.
"""

from __future__ import annotations

import math
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .events import engagement_weight
from .features.users import UserState
from .ranking.features import FEATURE_NAMES as RANKER_FEATURES
from .types import Event

if TYPE_CHECKING:
    from .candidates import Candidate
    from .catalog import Catalog
    from .compiled_trees import CompiledForest
    from .config import RecommenderConfig

DAY = 86_400.0
HOUR = 3_600.0
#: Events that make an item a positive label when they occur in the user's suffix.
LABEL_EVENTS = frozenset({"like", "complete_view", "share", "save", "comment", "replay"})
#: Half-lives (days) of the popularity windows: at the request, and where the user was last active.
RECENT_HALF_LIVES = (1.0, 7.0, 30.0)
LOCAL_HALF_LIVES = (7.0, 30.0)
#: Positive events read per request for the popularity where a returning user was last active.
LOCAL_WINDOW_MAX_EVENTS = 200_000
#: A user last active less than this before the activity snapshot reads the snapshot's windows instead.
LOCAL_REUSE_SECONDS = DAY

# The candidate sources, in the pool's priority order (their ranks are features; imported lazily below).
_SOURCES: tuple[str, ...] = (
    "following", "ann/short_term", "item2item", "sequence/next", "ann/long_term", "trending", "sound", "fresh",
    "explore", "popular",
)
_RANKER_KEPT = tuple(name for name in RANKER_FEATURES if name != "bias")
FEATURE_NAMES: tuple[str, ...] = (
    *_RANKER_KEPT,
    *(f"rank:{name}" for name in _SOURCES),
    "n_sources",
    *(f"pop_{int(h)}d" for h in RECENT_HALF_LIVES),
    *(f"local_pop_{int(h)}d" for h in LOCAL_HALF_LIVES),
    "log_age_days",
    "log_age_at_user_days",
    "log_user_gap_hours",
    "log_user_engaged",
)
_RANKER_COLUMNS = np.array([RANKER_FEATURES.index(name) for name in _RANKER_KEPT])
_FIRST_EXTRA = len(_RANKER_KEPT)
_SOURCE_COLUMN = {name: _FIRST_EXTRA + i for i, name in enumerate(_SOURCES)}
_X = {name: i for i, name in enumerate(FEATURE_NAMES)}


# ----------------------------------------------------------------------------------------------
# item activity: popularity windows for the features


@dataclass
class ItemActivity:
    """Positive engagement per catalogue row, decayed to ``at`` with each of ``RECENT_HALF_LIVES``, and the
    time-ordered positive events themselves (capped) for popularity at an earlier moment."""

    at: float
    decayed: np.ndarray  # (rows, len(RECENT_HALF_LIVES)) at ``at``
    times: np.ndarray  # positive events, oldest first
    rows: np.ndarray
    weights: np.ndarray
    version: int = 0

    @classmethod
    def empty(cls) -> ItemActivity:
        return cls(-math.inf, np.zeros((0, len(RECENT_HALF_LIVES))), np.zeros(0), np.zeros(0, np.int64),
                   np.zeros(0))

    def recent(self, rows: np.ndarray, now: float) -> np.ndarray:
        """(len(rows), len(RECENT_HALF_LIVES)) decayed positive engagement at ``now``."""
        out = np.zeros((len(rows), len(RECENT_HALF_LIVES)))
        if not len(self.decayed) or not math.isfinite(self.at):
            return out
        known = rows < len(self.decayed)
        rates = np.log(2.0) / (np.array(RECENT_HALF_LIVES) * DAY)
        out[known] = self.decayed[rows[known]] * np.exp(-rates * max(0.0, now - self.at))[None, :]
        return out

    def local(self, rows: np.ndarray, at: float) -> np.ndarray:
        """(len(rows), len(LOCAL_HALF_LIVES)) positive engagement up to ``at`` decayed to ``at`` (where a user
        was last active): from the snapshot's windows when ``at`` is recent, else from the events before it."""
        out = np.zeros((len(rows), len(LOCAL_HALF_LIVES)))
        if not len(rows) or not len(self.times) or not math.isfinite(self.at):
            return out
        if at >= self.at - LOCAL_REUSE_SECONDS:
            recent = self.recent(rows, max(at, self.at))
            for j, half_life in enumerate(LOCAL_HALF_LIVES):
                out[:, j] = recent[:, RECENT_HALF_LIVES.index(half_life)]
            return out
        end = int(np.searchsorted(self.times, at, side="right"))
        start = max(0, end - LOCAL_WINDOW_MAX_EVENTS,
                    int(np.searchsorted(self.times, at - 6 * max(LOCAL_HALF_LIVES) * DAY)))
        if end <= start:
            return out
        times, event_rows, weights = self.times[start:end], self.rows[start:end], self.weights[start:end]
        slot = np.full(max(int(event_rows.max()), int(rows.max())) + 1, -1, dtype=np.int64)
        slot[rows] = np.arange(len(rows))
        position = slot[event_rows]  # each event's place among ``rows`` (-1: not a candidate)
        hit = position >= 0
        for j, half_life in enumerate(LOCAL_HALF_LIVES):
            decay = np.exp(-np.log(2.0) / (half_life * DAY) * (at - times[hit]))
            out[:, j] = np.bincount(position[hit], weights=weights[hit] * decay, minlength=len(rows))
        return out


def item_activity(events: Iterable[Event], row_of: dict[str, int], durations: dict[str, float],
                  weights: dict[str, float], suspicious: set[str], at: float, n_rows: int,
                  max_events: int = 1_000_000, version: int = 0) -> ItemActivity:
    """The activity snapshot from the event log (flagged accounts ignored), at time ``at``."""
    times, rows, amounts = [], [], []
    for e in events:
        if e.item_id is None or e.user_id in suspicious or e.timestamp > at:
            continue
        row = row_of.get(e.item_id)
        if row is None:
            continue
        weight = engagement_weight(e, durations.get(e.item_id, 0.0), weights)
        if weight > 0:
            times.append(e.timestamp)
            rows.append(row)
            amounts.append(weight)
    t = np.array(times, dtype=np.float64)
    r = np.array(rows, dtype=np.int64)
    w = np.array(amounts, dtype=np.float64)
    order = np.argsort(t, kind="stable")[-max_events:]
    t, r, w = t[order], r[order], w[order]
    decayed = np.zeros((n_rows, len(RECENT_HALF_LIVES)))
    for j, half_life in enumerate(RECENT_HALF_LIVES):
        decayed[:, j] = np.bincount(r, weights=w * np.exp(-np.log(2.0) / (half_life * DAY) * (at - t)),
                                    minlength=n_rows)[:n_rows]
    return ItemActivity(at, decayed, t, r, w, version)


# ----------------------------------------------------------------------------------------------
# features


def features(
    X: np.ndarray,
    candidates: Sequence[Candidate],
    catalog: Catalog,
    activity: ItemActivity,
    user: UserState,
    now: float,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """The fusion model's rows for ``candidates``: ``X`` is their ranker feature matrix (same order); ``rows``
    their catalogue rows when the caller has them as an array already."""
    n = len(candidates)
    out = np.full((n, len(FEATURE_NAMES)), np.nan, dtype=np.float32)
    if n == 0:
        return out
    out[:, :_FIRST_EXTRA] = X[:, _RANKER_COLUMNS]
    # Each candidate's source ranks gathered into flat lists, written with one fancy assignment (an item
    # assignment per rank into the matrix cost more than the rest of this function); one comprehension, not
    # three appends per rank.
    source_column, log1p = _SOURCE_COLUMN, math.log1p
    found = [(i, column, log1p(rank)) for i, candidate in enumerate(candidates)
             for name, rank in candidate.ranks.items() if (column := source_column.get(name)) is not None]
    at: list[int] = []
    if found:
        at, columns, values = (list(part) for part in zip(*found, strict=True))
        out[at, columns] = values
    out[:, _X["n_sources"]] = np.bincount(np.array(at, dtype=np.int64), minlength=n)
    if rows is None:
        rows = np.fromiter((c.row for c in candidates), dtype=np.int64, count=n)
    recent = activity.recent(rows, now)
    for j, half_life in enumerate(RECENT_HALF_LIVES):
        out[:, _X[f"pop_{int(half_life)}d"]] = np.log1p(recent[:, j])
    last_active = user.last_event_at if user.last_event_at > 0 else now
    local = activity.local(rows, min(last_active, now))
    for j, half_life in enumerate(LOCAL_HALF_LIVES):
        out[:, _X[f"local_pop_{int(half_life)}d"]] = np.log1p(local[:, j])
    uploaded = catalog.uploaded_at[rows]
    out[:, _X["log_age_days"]] = np.log1p(np.maximum(now - uploaded, 0.0) / DAY)
    out[:, _X["log_age_at_user_days"]] = np.log1p(np.maximum(last_active - uploaded, 0.0) / DAY)
    out[:, _X["log_user_gap_hours"]] = math.log1p(max(now - last_active, 0.0) / HOUR)
    out[:, _X["log_user_engaged"]] = math.log1p(len(user.engaged))
    return out


# ----------------------------------------------------------------------------------------------
# labels: prefix / suffix cuts of the log


@dataclass(frozen=True)
class Cut:
    """A cut of the log: what the shadow engine replays, and per cut user the items they went on to engage with
    positively (``LABEL_EVENTS``) that their prefix does not hold."""

    kind: str  # "user" (each user's own cut) or "time" (one moment for everyone)
    kept: list[Event]
    now: float  # the moment the shadow engine serves the cut users at
    positives: dict[str, set[str]]
    prefix_items: dict[str, set[str]] = field(default_factory=dict)


def _by_user(events: Iterable[Event]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        out[e.user_id].append(e)
    return out


def cut_user_histories(events: Sequence[Event], known_items: set[str] | dict[str, Any], suffix_fraction: float,
                       min_items: int, users: set[str] | None = None) -> Cut:
    """Each user's items in the order they first met them; the last ``suffix_fraction`` of them (at least one)
    is the suffix. Users with fewer than ``min_items`` items keep their whole history. The cut is the first
    event of the first suffix item: every event of the user from then on leaves the replayed log."""
    ordered = sorted(events, key=lambda e: e.timestamp)
    per_user = _by_user(ordered)
    cut_at: dict[str, float] = {}
    for user_id, history in per_user.items():
        if users is not None and user_id not in users:
            continue
        first: dict[str, float] = {}
        for e in history:
            if e.item_id is not None and e.item_id in known_items and e.item_id not in first:
                first[e.item_id] = e.timestamp
        if len(first) < min_items:
            continue
        n_suffix = max(1, int(round(suffix_fraction * len(first))))
        cut_at[user_id] = list(first.values())[len(first) - n_suffix]
    kept, positives, prefix_items = [], {}, {}
    for e in ordered:
        at = cut_at.get(e.user_id)
        if at is None or e.timestamp < at:
            kept.append(e)
            if at is not None and e.item_id is not None:
                prefix_items.setdefault(e.user_id, set()).add(e.item_id)
        elif e.event_type in LABEL_EVENTS and e.item_id is not None and e.item_id in known_items:
            positives.setdefault(e.user_id, set()).add(e.item_id)
    positives = {u: items - prefix_items.get(u, set()) for u, items in positives.items()}
    positives = {u: items for u, items in positives.items() if items}
    now = kept[-1].timestamp if kept else 0.0
    return Cut("user", kept, now, positives, {u: prefix_items.get(u, set()) for u in positives})


def cut_at_time(events: Sequence[Event], known_items: set[str] | dict[str, Any], at: float) -> Cut:
    """One moment for everyone: the log before ``at`` is replayed, positives come from what followed."""
    kept = [e for e in events if e.timestamp < at]
    prefix_items: dict[str, set[str]] = defaultdict(set)
    for e in kept:
        if e.item_id is not None:
            prefix_items[e.user_id].add(e.item_id)
    positives: dict[str, set[str]] = {}
    for e in events:
        labelled = e.timestamp >= at and e.event_type in LABEL_EVENTS and e.item_id in known_items
        if labelled and e.user_id in prefix_items and e.item_id not in prefix_items[e.user_id]:
            positives.setdefault(e.user_id, set()).add(e.item_id)
    return Cut("time", sorted(kept, key=lambda e: e.timestamp), at, positives,
               {u: set(prefix_items[u]) for u in positives})


# ----------------------------------------------------------------------------------------------
# the model and its versions


@dataclass
class FusionModel:
    booster: Any  # lightgbm.Booster
    feature_names: tuple[str, ...] = FEATURE_NAMES
    #: The same forest as native code (``compile``), for serving; None: ``Booster.predict`` scores.
    compiled: CompiledForest | None = field(default=None, compare=False, repr=False)

    def compile(self) -> bool:
        """Compile the forest for serving (about 3 s for 150 trees; the job does it before promoting, off the
        request path). False when it cannot be compiled exactly: the booster keeps serving."""
        if self.compiled is None:
            from .compiled_trees import compile_forest

            self.compiled = compile_forest(self.booster)
        return self.compiled is not None

    def score(self, F: np.ndarray) -> np.ndarray:
        """P(chosen) per row for the binary objective (lambdarank: its raw score)."""
        return self._predict(F, raw_score=False)

    def log_odds(self, F: np.ndarray) -> np.ndarray:
        """The raw score: log-odds of being chosen for the binary objective, the same order as ``score``."""
        return self._predict(F, raw_score=True)

    def _predict(self, F: np.ndarray, raw_score: bool) -> np.ndarray:
        if not len(F):
            return np.zeros(0)
        compiled = self.compiled
        if compiled is not None:
            raw = compiled.raw(F)
            if raw_score or compiled.raw_is_score:
                return raw
            if compiled.sigmoid is not None:
                return 1.0 / (1.0 + np.exp(-compiled.sigmoid * raw))
        return np.asarray(self.booster.predict(F, num_threads=1, raw_score=raw_score), dtype=np.float64)

    def __getstate__(self) -> dict[str, Any]:
        # Native code does not pickle (the recommender snapshot): the flag recompiles it on load.
        state = dict(self.__dict__, compiled=None)
        state["_compile_on_load"] = self.compiled is not None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        compile_on_load = state.pop("_compile_on_load", False)
        self.__dict__.update(state)
        if compile_on_load:
            self.compile()


def served_scores(model: FusionModel, F: np.ndarray, value: np.ndarray, config: RecommenderConfig) -> np.ndarray:
    """What orders a page while ``model`` is active: its score on the ``fusion_score`` scale plus
    ``fusion_value_weight`` times the engagement value score. The promotion check judges this same ordering."""
    fused = model.log_odds(F) if config.fusion_score == "log_odds" else model.score(F)
    return fused + config.fusion_value_weight * value


@dataclass
class FusionVersion:
    version: int
    created_at: float
    status: str  # "active", "retired", "rejected"
    metrics: dict[str, Any]
    model: FusionModel | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "created_at": self.created_at, "status": self.status,
                "metrics": self.metrics}


class FusionRegistry:
    """Every fusion model trained, the active one (None: the engagement value model orders the page)."""

    def __init__(self) -> None:
        self.versions: list[FusionVersion] = []
        self.active_version: int | None = None

    @property
    def active(self) -> FusionModel | None:
        if self.active_version is None:
            return None
        return self._get(self.active_version).model

    def _get(self, version: int) -> FusionVersion:
        for record in self.versions:
            if record.version == version:
                return record
        raise KeyError(f"no fusion version {version}")

    def add(self, model: FusionModel, *, promote: bool, now: float, metrics: dict[str, Any]) -> FusionVersion:
        version = (self.versions[-1].version if self.versions else 0) + 1
        record = FusionVersion(version, now, "active" if promote else "rejected", metrics, model)
        if promote:
            self._retire_active()
            self.active_version = version
        self.versions.append(record)
        return record

    def _retire_active(self) -> None:
        """The active version becomes retired and drops its native code: only the active model is compiled, so a
        snapshot's load recompiles one forest however many versions it keeps (``rollback`` compiles again)."""
        if self.active_version is None:
            return
        record = self._get(self.active_version)
        record.status = "retired"
        if record.model is not None:
            record.model.compiled = None

    def rollback(self, version: int | None) -> None:
        """Make ``version`` active again (None: back to the engagement value model's ordering)."""
        if version is not None and self._get(version).model is None:
            raise KeyError(f"fusion version {version} has no model")
        self._retire_active()
        self.active_version = version
        if version is not None:
            self._get(version).status = "active"
            self._get(version).model.compile()

    def history(self) -> list[dict[str, Any]]:
        return [record.to_dict() for record in self.versions]


# ----------------------------------------------------------------------------------------------
# training data, fitting, judging


@dataclass
class Groups:
    """Ranking examples: one query (a cut user) per group, rows in candidate order."""

    F: np.ndarray
    labels: np.ndarray
    baseline: np.ndarray  # the value model's ordering before any fusion model (trend-boosted value), per row
    value: np.ndarray  # the engagement value score per row, which the served ordering adds to the fusion score
    sizes: list[int]
    users: list[str]
    missed: int = 0  # positives no source found

    @staticmethod
    def empty(missed: int = 0) -> Groups:
        return Groups(np.zeros((0, len(FEATURE_NAMES)), np.float32), np.zeros(0), np.zeros(0), np.zeros(0), [], [],
                      missed)

    def take(self, keep: Sequence[bool]) -> Groups:
        starts = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        index = np.concatenate([np.arange(starts[g], starts[g + 1]) for g, k in enumerate(keep) if k] or
                               [np.zeros(0, np.int64)])
        return Groups(self.F[index], self.labels[index], self.baseline[index], self.value[index],
                      [s for s, k in zip(self.sizes, keep, strict=True) if k],
                      [u for u, k in zip(self.users, keep, strict=True) if k])

    @staticmethod
    def concat(parts: Sequence[Groups]) -> Groups:
        parts = [p for p in parts if p.sizes]
        if not parts:
            return Groups.empty()
        return Groups(np.vstack([p.F for p in parts]), np.concatenate([p.labels for p in parts]),
                      np.concatenate([p.baseline for p in parts]), np.concatenate([p.value for p in parts]),
                      [s for p in parts for s in p.sizes],
                      [u for p in parts for u in p.users], sum(p.missed for p in parts))


def mean_ndcg(scores: np.ndarray, labels: np.ndarray, sizes: Sequence[int], k: int = 10) -> float | None:
    """Mean NDCG@k over groups with a positive, each group ordered by ``scores`` (ties: earlier row first)."""
    total, counted, start = 0.0, 0, 0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    for size in sizes:
        s, y = scores[start:start + size], labels[start:start + size]
        start += size
        positives = int((y > 0).sum())
        if not positives:
            continue
        order = np.argsort(-s, kind="stable")[:k]
        dcg = float((y[order] > 0) @ discounts[: len(order)])
        ideal = float(discounts[: min(positives, k)].sum())
        total += dcg / ideal
        counted += 1
    return total / counted if counted else None


def fit(groups: Groups, config: RecommenderConfig, seed: int) -> FusionModel:
    import lightgbm

    params = {
        "objective": config.fusion_objective,
        "learning_rate": config.fusion_learning_rate,
        "num_leaves": config.fusion_leaves,
        "min_data_in_leaf": config.fusion_min_leaf,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "num_threads": 1,
        "deterministic": True,
        "force_row_wise": True,
        "seed": seed,
        "verbose": -1,
    }
    names = [name.replace("/", "_").replace(":", "_") for name in FEATURE_NAMES]  # LightGBM: no JSON specials
    if config.fusion_objective == "lambdarank":
        params["lambdarank_truncation_level"] = 20
    group = groups.sizes if config.fusion_objective == "lambdarank" else None
    data = lightgbm.Dataset(groups.F, label=groups.labels, group=group, feature_name=names,
                            free_raw_data=True)
    booster = lightgbm.train(params, data, num_boost_round=config.fusion_trees)
    return FusionModel(booster)


def held_out(user_id: str, fraction: float) -> bool:
    """A stable split of users: the same user is always held out (or not) for a given fraction."""
    return (zlib.crc32(user_id.encode()) % 10_000) < fraction * 10_000


def train_and_judge(groups: Groups, current: FusionModel | None, config: RecommenderConfig, seed: int
                    ) -> tuple[FusionModel | None, dict[str, Any]]:
    """Fit on the groups of users not held out, judge candidate and current ordering on the held-out ones.
    Returns (model or None when there was nothing to learn from, figures with ``promote``)."""
    started = time.perf_counter()
    hold = [held_out(u, config.fusion_holdout_fraction) for u in groups.users]
    train = groups.take([not h for h in hold])
    test = groups.take(hold)
    summary: dict[str, Any] = {"train_users": len(train.sizes), "holdout_users": len(test.sizes),
                               "rows": int(len(groups.labels)), "positives": int((groups.labels > 0).sum()),
                               "positives_missed_by_sources": groups.missed}
    if not train.sizes or not (train.labels > 0).any() or not test.sizes:
        summary.update(promote=False, note="no labelled users on one side of the split")
        return None, summary
    model = fit(train, config, seed)
    candidate = mean_ndcg(served_scores(model, test.F, test.value, config), test.labels, test.sizes)
    current_order = served_scores(current, test.F, test.value, config) if current is not None else test.baseline
    baseline = mean_ndcg(current_order, test.labels, test.sizes)
    promote = candidate is not None and (baseline is None or candidate > baseline + config.fusion_promotion_min_gain)
    summary.update({
        "ndcg@10": candidate, "baseline_ndcg@10": baseline,
        "baseline": "active fusion model" if current is not None else "engagement value model",
        "promote": promote, "note": "promoted" if promote else "not better than the current ordering",
        "fit_seconds": round(time.perf_counter() - started, 2),
    })
    return model, summary


def importance(model: FusionModel, top: int = 12) -> list[tuple[str, float]]:
    gains = model.booster.feature_importance(importance_type="gain")
    total = float(gains.sum()) or 1.0
    order = np.argsort(-gains)[:top]
    return [(FEATURE_NAMES[i], round(float(gains[i]) / total, 4)) for i in order if gains[i] > 0]


__all__ = [
    "FEATURE_NAMES",
    "LABEL_EVENTS",
    "Cut",
    "FusionModel",
    "FusionRegistry",
    "Groups",
    "ItemActivity",
    "cut_at_time",
    "cut_user_histories",
    "features",
    "fit",
    "item_activity",
    "mean_ndcg",
    "train_and_judge",
]
