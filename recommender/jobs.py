"""Periodic jobs, each a named function of (state, now) returning a summary of what it changed.

The app's scheduler calls ``Recommender.run_job(name, now)`` on the intervals in ``JOBS``. Heavy jobs read a
snapshot under the lock, compute without it (feeds keep being served) and apply the result under the lock.
"""

from __future__ import annotations

import dataclasses
import math
import time
import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import fusion, metrics
from .candidates import CandidateRequest, gather
from .candidates import popular as popular_source
from .config import HOUR
from .events import EXPOSURE_EVENTS, engagement_weight
from .features import collaborative
from .features import items as item_features
from .features.interests import spherical_kmeans
from .filters import FilterContext, first_failing, known_exclusions
from .ingest import apply_event
from .ranking.features import build_features, interest_queries
from .ranking.value import trend_boosted, value_scores
from .reranking.cold_start import update_cohorts
from .sequence.training import train_gru4rec
from .state import EngineState
from .training import d2q
from .training.examples import ExampleBuffer
from .training.neural import train_neural
from .training.trainer import Evaluation, debiased_labels, evaluate, ndcg_credibly_worse, ndcg_shortfall
from .types import Event

DAY_LOOKBACK = 86_400.0  # how far back the farming detector and metric windows look, per day


@dataclass(frozen=True)
class JobSpec:
    name: str
    interval_seconds: float
    run: Callable[[EngineState, float], dict]
    description: str


# ----------------------------------------------------------------------------------------------
# engagement farming


def detect_engagement_farming(state: EngineState, now: float) -> dict:
    """Flag accounts behind like bursts: many likes on one item from brand-new accounts within a short
    window, or one account liking faster than a person can watch. Flagged accounts' events are ignored by
    statistics, trends and item-to-item CF from then on (both are recomputed right away)."""
    config = state.config
    with state.lock:
        recent = [e for e in state.events.since_time(now - DAY_LOOKBACK) if e.event_type == "like" and e.item_id]
        created = {
            user_id: (u.account_created_at if u.account_created_at is not None else u.first_seen_at)
            for user_id, u in state.users.items()
        }
        already = set(state.suspicious_users)

    def is_new(e: Event) -> bool:
        at = created.get(e.user_id)
        return at is not None and e.timestamp - at < config.farming_new_account_seconds

    flagged: set[str] = set()
    burst_items: list[str] = []
    by_item: dict[str, list[Event]] = defaultdict(list)
    for e in recent:
        if is_new(e):
            by_item[e.item_id].append(e)
    for item_id, likes in by_item.items():
        likes.sort(key=lambda e: e.timestamp)
        start = 0
        for end in range(len(likes)):
            while likes[end].timestamp - likes[start].timestamp > config.farming_window_seconds:
                start += 1
            window = likes[start : end + 1]
            accounts = {e.user_id for e in window}
            if len(accounts) >= config.farming_min_burst:
                flagged |= accounts
                if item_id not in burst_items:
                    burst_items.append(item_id)
    by_user: dict[str, list[float]] = defaultdict(list)
    for e in recent:
        by_user[e.user_id].append(e.timestamp)
    for user_id, times in by_user.items():
        times.sort()
        start = 0
        for end in range(len(times)):
            while times[end] - times[start] > 60.0:
                start += 1
            if end - start + 1 > config.farming_max_likes_per_minute:
                flagged.add(user_id)
                break
    new_flags = sorted(flagged - already)
    summary = {"newly_flagged": new_flags, "burst_items": burst_items}
    if new_flags:
        with state.lock:
            state.suspicious_users |= set(new_flags)
        summary["recomputed"] = {"video_stats": update_video_stats(state, now), "trends": detect_trends(state, now)}
    summary["suspicious_users"] = len(state.suspicious_users)
    return summary


# ----------------------------------------------------------------------------------------------
# video statistics


@dataclass
class _RecountCheckpoint:
    """Where the last full count stopped: counts and open exposures after the first ``length`` logged events.
    Valid while the log only grew (nothing dropped or rewritten) and the items' durations and the flagged
    accounts are the same: then the next count continues from here instead of re-reading the whole log."""

    key: tuple
    durations: dict[str, float]
    length: int
    counts: dict[str, np.ndarray]
    last_exposure: dict[tuple[str, str], float]


def _recount(events: list[Event], durations: dict[str, float], suspicious: set[str], gap: float,
             counts: dict[str, np.ndarray] | None = None,
             last_exposure: dict[tuple[str, str], float] | None = None) -> dict:
    """Item counters over ``events``; given ``counts`` / ``last_exposure`` of a prefix, continues from them."""
    counts = {} if counts is None else counts
    last_exposure = {} if last_exposure is None else last_exposure
    for e in events:
        if e.item_id is None or e.item_id not in durations or e.user_id in suspicious:
            continue
        new_exposure = False
        if e.event_type in EXPOSURE_EVENTS:
            key = (e.user_id, e.item_id)
            last = last_exposure.get(key)
            new_exposure = last is None or e.timestamp - last > gap
            last_exposure[key] = e.timestamp
        row = counts.get(e.item_id)
        if row is None:
            row = counts[e.item_id] = np.zeros(len(item_features.COUNTERS))
        item_features.apply_event(row, e, durations[e.item_id], new_exposure)
    return counts


def _counts_from_log(state: EngineState, events: list[Event], sequence: int, durations: dict[str, float],
                     suspicious: set[str], gap: float) -> dict[str, np.ndarray]:
    key = (tuple(sorted(suspicious)), sequence - len(events), state.events.rewrites, gap)
    checkpoint = state.recount_checkpoint
    if (checkpoint is not None and checkpoint.key == key and checkpoint.length <= len(events)
            and checkpoint.durations == durations):
        counts, last_exposure = checkpoint.counts, checkpoint.last_exposure
        _recount(events[checkpoint.length :], durations, suspicious, gap, counts, last_exposure)
    else:
        counts, last_exposure = {}, {}
        _recount(events, durations, suspicious, gap, counts, last_exposure)
    state.recount_checkpoint = _RecountCheckpoint(key, durations, len(events), counts, last_exposure)
    return {item_id: row.copy() for item_id, row in counts.items()}


def update_video_stats(state: EngineState, now: float) -> dict:
    """Recount every item's statistics from the log (ignoring flagged accounts), refresh the catalogue
    baseline rates, per-topic rates, the popular list and the cold-start cohorts."""
    config = state.config
    with state.lock:
        events = state.events.snapshot()
        sequence = state.events.appended
        durations = {item.item_id: item.duration for item in state.catalog.items}
        suspicious = set(state.suspicious_users)
    counts = _counts_from_log(state, events, sequence, durations, suspicious, config.exposure_gap_seconds)
    with state.lock:
        catalog = state.catalog
        before = catalog.counts[: len(catalog)].copy()
        catalog.counts[: len(catalog)] = 0
        for item_id, row_counts in counts.items():
            row = catalog.row_of.get(item_id)
            if row is not None:
                catalog.counts[row] = row_counts
        _catch_up(state, state.events.since_sequence(sequence))
        n = len(catalog)
        changed = int(np.any(np.abs(catalog.counts[:n] - before[:n]) > 1e-9, axis=1).sum()) if n else 0
        state.global_rates = item_features.global_rates(catalog.counts[:n])
        state.category_rates = _category_rates(state)
        popular_source.refresh(state)
        cohorts = update_cohorts(catalog, state.global_rates, config, now)
    return {
        "items_with_stats": len(counts),
        "items_changed": changed,
        "global_rates": {k: round(v, 4) for k, v in state.global_rates.items()},
        "popular_top": state.popular[:5],
        "cold_start": cohorts,
    }


def _catch_up(state: EngineState, events: list[Event]) -> None:
    """Apply counter updates for events that arrived while a job computed from its snapshot."""
    for e in events:
        if e.user_id in state.suspicious_users:
            continue
        row = state.catalog.row_of.get(e.item_id) if e.item_id else None
        if row is None:
            continue
        user = state.users.get(e.user_id)
        seen_at = user.seen.get(e.item_id) if user else None
        new_exposure = e.event_type in EXPOSURE_EVENTS and seen_at == e.timestamp
        # Approximation: an event opened an exposure if it is still the pair's latest exposure event.
        item_features.apply_event(state.catalog.counts[row], e, state.catalog.items[row].duration, new_exposure)


def _category_rates(state: EngineState) -> dict[str, float]:
    """Per topic: share of exposures that turned into a like, share or completed view (bandit priors)."""
    catalog = state.catalog
    C = item_features.C
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in range(len(catalog)):
        category = catalog.items[row].category
        if category:
            c = catalog.counts[row]
            totals[category][0] += c[C["likes"]] + c[C["shares"]] + c[C["completes"]]
            totals[category][1] += c[C["exposures"]]
    return {name: min(1.0, pos / exposures) for name, (pos, exposures) in totals.items() if exposures >= 10}


# ----------------------------------------------------------------------------------------------
# trends

TREND_WEIGHTS = {"view": 0.2, "complete_view": 0.5, "replay": 0.5, "like": 1.0, "comment": 1.5, "share": 2.0,
                 "save": 1.0, "hide": -2.0, "report": -3.0}


def detect_trends(state: EngineState, now: float) -> dict:
    """Engagement growth: the last ``trend_window`` against the rate over the ``trend_baseline`` before it.
    trend = clip(log2(growth) / 3, 0, 1), only for items with enough recent engagement."""
    config = state.config
    window, baseline_span = config.trend_window_seconds, config.trend_baseline_seconds
    with state.lock:
        events = state.events.since_time(now - window - baseline_span)
        suspicious = set(state.suspicious_users)
    recent: dict[str, float] = defaultdict(float)
    before: dict[str, float] = defaultdict(float)
    for e in events:
        if e.item_id is None or e.user_id in suspicious or e.timestamp >= now:
            continue
        weight = TREND_WEIGHTS.get(e.event_type, 0.0)
        if e.timestamp >= now - window:
            recent[e.item_id] += weight
        else:
            before[e.item_id] += weight
    factors: dict[str, float] = {}
    for item_id, amount in recent.items():
        if amount < config.trend_min_engagement:
            continue
        expected = max(before.get(item_id, 0.0), 0.0) * window / baseline_span
        growth = (amount + 1.0) / (expected + 1.0)
        factor = min(1.0, max(0.0, math.log2(growth) / 3.0))
        if factor > 0:
            factors[item_id] = factor
    with state.lock:
        catalog = state.catalog
        catalog.trend[: len(catalog)] = 0.0
        for item_id, factor in factors.items():
            row = catalog.row_of.get(item_id)
            if row is not None:
                catalog.trend[row] = factor
        ranked = sorted((i for i in factors if i in catalog.row_of), key=lambda i: -factors[i])
        state.trending = ranked[: config.trend_list_size]
    return {"trending": len(state.trending), "top": [(i, round(factors[i], 3)) for i in state.trending[:5]]}


# ----------------------------------------------------------------------------------------------
# item-to-item neighbours


def compute_item_neighbors(state: EngineState, now: float) -> dict:
    """Item-to-item weights from co-engagement. A user "engaged with" an item when their net engagement with
    it is positive (a view followed by a skip is not). Up to ``cf_ease_max_items`` engaged items the weights
    are EASE's closed form (a ridge regression of each item on all others: it discounts popular items and
    overlapping evidence, which plain co-counts do not); above that, cosine over co-engaging users shrunk
    toward 0 for small overlaps: co(i, j) / (sqrt(n_i · n_j) + shrinkage). Top ``neighbors_per_item`` each."""
    config = state.config
    with state.lock:
        events = state.events.snapshot()
        suspicious = set(state.suspicious_users)
        durations = {item.item_id: item.duration for item in state.catalog.items}
        version = state.similarity.version + 1
    per_user: dict[str, dict[str, float]] = defaultdict(dict)
    for e in events:
        if e.item_id is None or e.user_id in suspicious or e.item_id not in durations:
            continue
        weight = engagement_weight(e, durations[e.item_id], config.event_weights)
        if weight:
            engaged = per_user[e.user_id]
            engaged[e.item_id] = engaged.pop(e.item_id, 0.0) + weight  # re-insert: dict order = recency
    index: dict[str, int] = {}
    baskets: list[np.ndarray] = []
    for engaged in per_user.values():
        positive = [item_id for item_id, net in engaged.items() if net > 0][-config.cf_max_items_per_user :]
        if len(positive) >= 2:
            baskets.append(np.array([index.setdefault(i, len(index)) for i in positive], dtype=np.int64))
    ids = list(index)
    if not baskets:
        similarity, form = collaborative.ItemSimilarity.empty(), "none"
    else:
        similarity, form = _similarity_by_size(ids, baskets, config, version)
    with state.lock:
        state.similarity = similarity
    return {"method": similarity.method, "form": form,
            "items_with_neighbors": int(np.count_nonzero(np.diff(similarity.indptr))),
            "pairs": similarity.pairs, "users": len(baskets), "items": len(ids)}


def _similarity_by_size(ids: list[str], baskets: list[np.ndarray], config, version: int
                        ) -> tuple[collaborative.ItemSimilarity, str]:
    """The size policy. Exact EASE through the item-space inverse up to ``cf_ease_max_items`` items; exact
    EASE through the user-space inverse when users are fewer than items and (users × items) fits
    ``cf_ease_dual_max_cells``; beyond both, EASE on the ``cf_ease_max_items`` most engaged items (the head,
    where nearly all co-engagement is) with shrunk cosine for anchors in the tail."""
    lam, k = config.cf_ease_lambda, config.neighbors_per_item
    n_items, n_users = len(ids), len(baskets)
    if n_items <= config.cf_ease_max_items:
        return collaborative.ease_primal(ids, baskets, lam, k, version), "primal"
    if n_users < n_items and n_users * n_items <= config.cf_ease_dual_max_cells:
        return collaborative.ease_dual(ids, baskets, lam, k, version), "dual"
    cosine = _cosine(ids, baskets, config, version)
    if config.cf_ease_max_items <= 0:
        return cosine, "cosine"
    reach = np.bincount(np.concatenate(baskets), minlength=n_items)
    head = np.sort(np.argsort(-reach, kind="stable")[: config.cf_ease_max_items])
    local = np.full(n_items, -1, dtype=np.int64)
    local[head] = np.arange(len(head))
    head_baskets = [b for b in (local[b][local[b] >= 0] for b in baskets) if len(b) >= 2]
    ease = collaborative.ease_primal([ids[i] for i in head], head_baskets, lam, k, version)
    return _head_and_tail(ids, head, ease, cosine, k, version), "head-ease+tail-cosine"


def _head_and_tail(ids: list[str], head: np.ndarray, ease: collaborative.ItemSimilarity,
                   cosine: collaborative.ItemSimilarity, k: int, version: int) -> collaborative.ItemSimilarity:
    """Head anchors keep their EASE neighbours, tail anchors their cosine ones, the latter rescaled so a tail
    anchor's best neighbour weighs what a head anchor's typically does (per-user scores sum over both)."""
    in_head = np.zeros(len(ids), dtype=bool)
    in_head[head] = True
    ease_left = head[np.repeat(np.arange(len(ease)), np.diff(ease.indptr))]
    ease_right = head[ease.neighbors]
    cos_left = np.repeat(np.arange(len(ids)), np.diff(cosine.indptr))
    tail = ~in_head[cos_left]
    ease_best = ease.weights[ease.indptr[:-1][np.diff(ease.indptr) > 0]]
    cos_best = cosine.weights[cosine.indptr[:-1][np.diff(cosine.indptr) > 0]]
    scale = float(np.median(ease_best) / np.median(cos_best)) if len(ease_best) and len(cos_best) else 1.0
    left = np.concatenate([ease_left, cos_left[tail]])
    right = np.concatenate([ease_right, cosine.neighbors[tail]])
    weight = np.concatenate([ease.weights, cosine.weights[tail] * scale])
    return collaborative.from_pairs("ease", ids, left, right, weight, k, version)


def _cosine(ids: list[str], baskets: list[np.ndarray], config, version: int) -> collaborative.ItemSimilarity:
    n_items = len(ids)
    item_users = np.bincount(np.concatenate(baskets), minlength=n_items).astype(np.float64)
    codes = np.concatenate([(b[:, None] * n_items + b[None, :]).ravel() for b in baskets])
    codes, co = np.unique(codes, return_counts=True)
    left, right = codes // n_items, codes % n_items
    keep = (left != right) & (co >= config.cf_min_co_users)
    left, right, co = left[keep], right[keep], co[keep]
    similarity = co / (np.sqrt(item_users[left] * item_users[right]) + config.cf_shrinkage)
    return collaborative.from_pairs("cosine", ids, left, right, similarity, config.neighbors_per_item, version)


# ----------------------------------------------------------------------------------------------
# long-term interests


def update_long_term_interests(state: EngineState, now: float) -> dict:
    """Cluster each user's positively engaged item vectors (recency-weighted) into a few centroids."""
    config = state.config
    rate = math.log(2.0) / config.long_term_half_life
    with state.lock:
        events = state.events.snapshot()
        catalog = state.catalog
        rows_of = dict(catalog.row_of)
        durations = {item.item_id: item.duration for item in catalog.items}
    per_user: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for e in events:
        if e.item_id not in rows_of:
            continue
        weight = engagement_weight(e, durations[e.item_id], config.event_weights)
        if weight > 0:
            per_user[e.user_id][e.item_id] += weight * math.exp(-rate * max(0.0, now - e.timestamp))
    updated, centroid_counts = 0, []
    for user_id, weights_by_item in per_user.items():
        with state.lock:
            rows, weights_list = [], []
            for item_id, weight in weights_by_item.items():
                row = catalog.row_of.get(item_id)
                if row is not None and catalog.has_vector[row]:
                    rows.append(row)
                    weights_list.append(weight)
            if not rows:
                continue
            vectors = catalog.vectors[rows].astype(np.float64)
        weights = np.array(weights_list)
        centroids, totals = spherical_kmeans(vectors, weights, config.long_term_centroids, seed=len(user_id))
        with state.lock:
            user = state.user(user_id)
            user.long_term.set(centroids, totals, now)
            cutoff = now - max(config.seen_window_seconds, config.exposure_gap_seconds)
            user.seen = {i: at for i, at in user.seen.items() if at >= cutoff}
            for scores in (user.short_scores, user.long_positive, user.long_negative):
                scores.prune(now)
        updated += 1
        centroid_counts.append(len(totals))
    return {
        "users_updated": updated,
        "mean_centroids": round(float(np.mean(centroid_counts)), 2) if centroid_counts else 0.0,
    }


# ----------------------------------------------------------------------------------------------
# ranker training and promotion


def train_and_promote_ranker(state: EngineState, now: float) -> dict:
    """Once ``train_min_examples`` new examples have closed since the last run, train a neural candidate
    (warm-started from the active version when it is neural) on the recent examples except the newest
    ``holdout_fraction``, evaluate it, the active version and the prior on those held-out impressions, and
    promote it only if its log loss is lower, its AUC no worse and its value-model NDCG no worse (within
    tolerances). Before that, the hand-set prior serves (the cold-start fallback)."""
    config = state.config
    registry = state.ranker
    with state.lock:
        closed = state.examples.close_idle(now)
        new = len(state.examples.since(registry.trained_until))
        data = state.examples.since(now - config.training_window_seconds)
        active_version = registry.active_version
        active = registry.active
        prior = registry.models[0]
    summary: dict = {"closed_examples": closed, "new_examples": new, "active_version": active_version}
    if new < config.train_min_examples:
        summary["skipped"] = f"fewer than {config.train_min_examples} new examples"
        return summary
    split = int(len(data) * (1.0 - config.holdout_fraction))
    train, holdout = data.slice(slice(0, split)), data.slice(slice(split, None))
    buckets = d2q.fit_buckets(train.watch_seconds, train.durations, config.d2q_buckets,
                              config.d2q_effective_quantile)
    y_train = debiased_labels(train.Y, train.watch_seconds, train.durations, buckets)
    y_holdout = debiased_labels(holdout.Y, holdout.watch_seconds, holdout.durations, buckets)
    run = train_neural(active, train.X, y_train, batch_size=config.train_batch_size, max_epochs=config.train_epochs,
                       learning_rate=config.learning_rate, weight_decay=config.l2,
                       time_budget=config.train_time_budget_seconds, seed=config.random_seed + len(registry.records),
                       calibration_steps=config.train_calibration_steps)

    def judged(model) -> Evaluation:  # noqa: ANN001
        return evaluate(model, holdout.X, y_holdout, holdout.sessions, config.value_weights)

    trained, baseline = judged(run.model), judged(active)
    from_prior = baseline if active_version == 0 else judged(prior)
    better_loss = trained.log_loss < baseline.log_loss - config.promotion_min_logloss_gain
    auc_ok = trained.auc is None or baseline.auc is None or trained.auc >= baseline.auc - config.promotion_auc_tolerance
    ndcg_ok = not ndcg_credibly_worse(trained, baseline, config.promotion_ndcg_tolerance)
    promote = better_loss and auc_ok and ndcg_ok
    note = ("promoted" if promote else "log loss not lower" if not better_loss else "AUC worse" if not auc_ok
            else "value NDCG worse")

    def figures(evaluation: Evaluation) -> dict:
        return {"log_loss": evaluation.log_loss, "auc": evaluation.auc, "ndcg": evaluation.ndcg}

    paired = ndcg_shortfall(trained, baseline)
    metrics_ = {
        "candidate": figures(trained),
        "baseline": {"version": active_version, **figures(baseline)},
        # candidate minus baseline over the same held-out sessions, and its standard error (what the gate reads)
        "ndcg_paired": None if paired is None else {"difference": paired[0], "standard_error": paired[1],
                                                    "sessions": len(trained.session_ndcg)},
        "prior": figures(from_prior),
        "per_task": trained.per_task,
        "prior_per_task": from_prior.per_task,
        "kind": "mlp " + "-".join(str(h) for h in run.model.hidden),
        "training": {"epochs": run.epochs, "seconds": round(run.seconds, 2), "warm_start": run.warm_start,
                     "validation_loss": run.validation_loss, "out_of_time": run.out_of_time},
        "d2q": buckets.to_dict(),
        "trained_until": float(data.times[-1]),
    }
    with state.lock:
        record = registry.add_candidate(run.model, promote=promote, now=now, metrics=metrics_, n_train=split,
                                        n_holdout=len(holdout), note=note)
        registry.trained_until = float(data.times[-1])
    summary.update({"candidate_version": record.version, "promoted": promote, "note": note,
                    "active_version": registry.active_version, "candidate": metrics_["candidate"],
                    "baseline": metrics_["baseline"], "prior": metrics_["prior"],
                    "ndcg_paired": metrics_["ndcg_paired"], "n_train": split,
                    "n_holdout": len(holdout), "training": metrics_["training"],
                    "per_task": {task: {"candidate": trained.per_task[task], "prior": from_prior.per_task[task]}
                                 for task in trained.per_task}})
    return summary


# ----------------------------------------------------------------------------------------------
# sequence model


def train_sequence_model(state: EngineState, now: float, gate: bool = True) -> dict:
    """GRU4Rec on each user's positively engaged items in the order of their latest engagement (the order the
    live profile keeps), over the ``sequence_max_items`` most engaged items. Each user's last item is held
    out; the new version serves only if its recall@k there beats popularity's (else the previous one stays).

    ``gate=False`` serves the new version whatever it scored (status "forced"): the recommender benchmark
    measures what a request costs with the sequence source on where the gate rejected it. The jobs never do."""
    config = state.config
    with state.lock:
        events = state.events.snapshot()
        suspicious = set(state.suspicious_users)
        durations = {item.item_id: item.duration for item in state.catalog.items}
        version = (state.sequence_versions[-1]["version"] if state.sequence_versions else 0) + 1
    per_user: dict[str, dict[str, float]] = defaultdict(dict)
    for e in events:
        if e.item_id is None or e.user_id in suspicious or e.item_id not in durations:
            continue
        weight = engagement_weight(e, durations[e.item_id], config.event_weights)
        if weight:
            engaged = per_user[e.user_id]
            engaged[e.item_id] = engaged.pop(e.item_id, 0.0) + weight
    orders = [[i for i, net in engaged.items() if net > 0] for engaged in per_user.values()]
    reach: dict[str, int] = defaultdict(int)
    for order in orders:
        for item_id in order:
            reach[item_id] += 1
    ids = sorted(reach, key=lambda i: (-reach[i], i))[: config.sequence_max_items]
    index = {item_id: p for p, item_id in enumerate(ids)}
    sequences = [s for s in ([index[i] for i in order if i in index] for order in orders) if len(s) >= 2]
    engaged = sum(len(s) for s in sequences)
    summary: dict = {"users_with_sequences": len(sequences), "items": len(ids), "engaged": engaged}
    if len(sequences) < config.sequence_min_users:
        summary["skipped"] = f"fewer than {config.sequence_min_users} users with two or more engaged items"
        return summary
    last = state.sequence_versions[-1] if state.sequence_versions else None
    if last is not None and state.sequence is not None and last.get("engaged") and \
            engaged < last["engaged"] * (1.0 + config.sequence_retrain_min_growth):
        # the model reads each user's live sequence at request time: retraining waits for new transitions
        summary["skipped"] = (f"engaged items grew less than {config.sequence_retrain_min_growth:.0%} "
                              f"since version {last['version']}")
        return summary
    run = train_gru4rec(sequences, ids, dim=config.sequence_dim, max_length=config.sequence_max_length,
                        epochs=config.sequence_epochs, batch_size=config.sequence_batch_size,
                        learning_rate=config.sequence_learning_rate, weight_decay=config.sequence_weight_decay,
                        time_budget=config.sequence_time_budget_seconds, seed=config.random_seed + version,
                        recall_k=config.sequence_recall_k, version=version)
    beats_popularity = run.recall is not None and run.popularity_recall is not None and \
        run.recall > run.popularity_recall
    promote = beats_popularity or not gate
    status = "active" if beats_popularity else "forced" if promote else "rejected"
    record = {"version": version, "created_at": now, "status": status,
              "recall": run.recall, "popularity_recall": run.popularity_recall, "k": config.sequence_recall_k,
              "users_held_out": run.users_held_out, "epochs": run.epochs, "seconds": round(run.seconds, 2),
              "loss": run.loss, "items": len(ids), "users": len(sequences), "engaged": engaged}
    with state.lock:
        if promote:
            for previous in state.sequence_versions:
                if previous["status"] in ("active", "forced"):
                    previous["status"] = "retired"
            state.sequence = dataclasses.replace(run.model, metrics=record)
        state.sequence_versions.append(record)
        del state.sequence_versions[:-50]
    summary.update({k: record[k] for k in ("version", "status", "recall", "popularity_recall", "k", "epochs",
                                           "seconds", "users_held_out")})
    return summary


# ----------------------------------------------------------------------------------------------
# candidate fusion


def refresh_item_activity(state: EngineState, now: float) -> dict:
    """Popularity windows for the fusion features: positive engagement per item decayed over several half-lives,
    and the time-ordered positive events for popularity where a returning user was last active."""
    with state.lock:
        events = state.events.snapshot()
        catalog = state.catalog
        row_of = dict(catalog.row_of)
        durations = {item.item_id: item.duration for item in catalog.items}
        suspicious = set(state.suspicious_users)
        n_rows = len(catalog)
        version = state.activity.version + 1
    activity = fusion.item_activity(events, row_of, durations, state.config.event_weights, suspicious, now, n_rows,
                                    version=version)
    with state.lock:
        if state.catalog.row_of == row_of:  # rows moved meanwhile (an item removed): the next run catches up
            state.activity = activity
            return {"positive_events": len(activity.times), "items": n_rows}
    return {"skipped": "catalogue changed while counting"}


def _shadow_engine(state: EngineState, cut: fusion.Cut) -> EngineState:
    """A fresh engine that replayed ``cut.kept`` and ran the jobs its candidate sources and features read (item
    statistics, trends, item-to-item, long-term interests, activity); no sequence model (the live one was
    trained on the suffixes) and no example logging. Its ranker is the live registry (read only)."""
    config = state.config
    shadow = EngineState(config=config, ranker=state.ranker,
                         examples=ExampleBuffer(1, config.session_gap_seconds))
    with state.lock:
        items = list(state.catalog.items)
        shadow.suspicious_users = set(state.suspicious_users)
    for item in items:
        shadow.catalog.upsert(item)
    if shadow.catalog.index_due(config.ann_index_min_items) == "build":
        shadow.catalog.set_index(shadow.catalog.train_index(config.random_seed))
    for event in cut.kept:
        apply_event(shadow, event, log_features=False)
    for job in (update_video_stats, detect_trends, compute_item_neighbors, update_long_term_interests,
                refresh_item_activity):
        job(shadow, cut.now)
    return shadow


def _fusion_groups(shadow: EngineState, cut: fusion.Cut, users: list[str]) -> fusion.Groups:
    """Per cut user: the candidates the sources find at the cut (their prefix excluded, the live filters
    applied), their fusion features, labels and the engagement value model's score."""
    config, catalog, now = shadow.config, shadow.catalog, cut.now
    ranker = shadow.ranker.active
    parts_F, parts_y, parts_b, parts_v, sizes, kept_users = [], [], [], [], [], []
    missed = 0
    for user_id in users:
        user = shadow.users.get(user_id)
        positives = cut.positives[user_id]
        if user is None:
            missed += len(positives)
            continue
        queries = interest_queries(user, catalog, now, config.declared_interest_weight)
        context = FilterContext(user, catalog, config, now, frozenset(cut.prefix_items.get(user_id, ())))
        rng = np.random.default_rng([config.random_seed, zlib.crc32(user_id.encode())])
        request = CandidateRequest(shadow, config, user, queries, now, known_exclusions(context), rng)
        candidates, _ = gather(request, dict(config.candidate_quotas))
        candidates = [c for c in candidates if first_failing(context, c.row) is None]
        labels = np.array([c.item_id in positives for c in candidates], dtype=np.float64)
        missed += len(positives) - int(labels.sum())
        if not labels.any():
            continue
        rows = np.array([c.row for c in candidates], dtype=np.int64)
        X = build_features(config, catalog, shadow.global_rates, user, queries, rows, now, None,
                           request.collaborative, shadow.sequence_scores(user, rows))
        value = value_scores(ranker.predict(X), config.value_weights)
        parts_F.append(fusion.features(X, candidates, catalog, shadow.activity, user, now))
        parts_y.append(labels)
        parts_b.append(trend_boosted(value, catalog.trend[rows], config.trend_boost))
        parts_v.append(value)
        sizes.append(len(candidates))
        kept_users.append(f"{cut.kind}:{user_id}")
    if not sizes:
        return fusion.Groups.empty(missed)
    return fusion.Groups(np.vstack(parts_F), np.concatenate(parts_y), np.concatenate(parts_b), np.concatenate(parts_v),
                         sizes, kept_users, missed)


def _sampled(users: list[str], limit: int) -> list[str]:
    return sorted(users, key=lambda u: (zlib.crc32(u.encode()), u))[:limit]


def train_candidate_fusion(state: EngineState, now: float) -> dict:
    """Cut the log (``fusion_cuts``), replay each cut into a shadow engine, learn which candidates the cut users
    went on to engage with, and promote the model only if it orders held-out users' candidates better than the
    current ordering (see ``recommender.fusion``)."""
    config = state.config
    if not config.fusion_enabled:
        return {"skipped": "fusion disabled"}
    with state.lock:
        events = state.events.snapshot()
        known = set(state.catalog.row_of)
        current = state.fusion.active
        last = state.fusion.versions[-1].metrics if state.fusion.versions else None
    if last is not None and len(events) < last.get("events", 0) * (1.0 + config.fusion_retrain_min_growth):
        return {"skipped": f"the log grew less than {config.fusion_retrain_min_growth:.0%} since the last run",
                "active_version": state.fusion.active_version}
    started = time.perf_counter()
    cuts: list[fusion.Cut] = []
    kinds = set(config.fusion_cuts.split("+"))
    if "user" in kinds:
        cuts.append(fusion.cut_user_histories(events, known, config.fusion_suffix_fraction,
                                              config.fusion_min_user_items))
    if "time" in kinds and events:
        times = sorted(e.timestamp for e in events)
        at = times[min(len(times) - 1, int(len(times) * (1.0 - config.fusion_suffix_fraction)))]
        cuts.append(fusion.cut_at_time(events, known, at))
    parts, replay_seconds = [], 0.0
    for cut in cuts:
        users = _sampled(list(cut.positives), config.fusion_max_users)
        if not users:
            continue
        t0 = time.perf_counter()
        shadow = _shadow_engine(state, cut)
        replay_seconds += time.perf_counter() - t0
        parts.append(_fusion_groups(shadow, cut, users))
    groups = fusion.Groups.concat(parts)
    model, summary = fusion.train_and_judge(groups, current, config, config.random_seed)
    summary.update({"events": len(events), "cuts": [c.kind for c in cuts], "replay_seconds": round(replay_seconds, 2),
                    "seconds": round(time.perf_counter() - started, 2)})
    if model is None:
        return summary
    summary["importance"] = fusion.importance(model)
    if summary["promote"]:
        summary["compiled"] = model.compile()  # before the lock: requests keep being served meanwhile
    with state.lock:
        record = state.fusion.add(model, promote=summary["promote"], now=now, metrics=summary)
        summary.update(version=record.version, active_version=state.fusion.active_version)
    return summary


# ----------------------------------------------------------------------------------------------
# vector index


def rebuild_vector_index(state: EngineState, now: float) -> dict:
    """Build the faiss IVF index once the catalogue reaches ``ann_index_min_items`` (the recommender also builds
    it when a bulk upsert crosses that size, e.g. at start-up), retrain its lists after the catalogue doubled
    or halved, drop it below the threshold (exact search is then fast enough). Upserts and removals keep it in
    step in between, so this job only changes how it is partitioned."""
    config = state.config
    with state.lock:
        catalog = state.catalog
        n = len(catalog)
        due = catalog.index_due(config.ann_index_min_items)
        if due is None:
            if catalog.index is None:
                return {"index": "exact search", "items": n}
            return {"index": "up to date", "items": n, "lists": catalog.index.n_lists, "indexed": len(catalog.index)}
        if due == "drop":
            catalog.set_index(None)
            return {"index": "removed", "items": n}
        version = catalog.version
        index = catalog.train_index(config.random_seed)  # k-means on a sample (seconds at 1M items)
    # Fill it outside the lock (requests keep the current index meanwhile) ...
    filled = False
    if version == catalog.version:
        rows = catalog.indexed_rows()
        index.add(rows, catalog.vectors[rows])
        filled = True
    with state.lock:
        if not filled or catalog.version != version or len(index) != len(catalog.indexed_rows()):
            index.ivf.reset()  # ... and again under it if the catalogue moved meanwhile
        catalog.set_index(index)
    return {"index": "built", "items": n, "lists": index.n_lists, "indexed": len(index)}


# ----------------------------------------------------------------------------------------------
# metric snapshots


def snapshot_metrics(state: EngineState, now: float) -> dict:
    with state.lock:
        events = state.events.since_time(now - 9 * DAY_LOOKBACK)
    result = metrics.snapshot(events, now)
    with state.lock:
        state.metric_history.append(result)
        del state.metric_history[:-500]
    return result


JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec("engagement_farming", 5 * 60, detect_engagement_farming,
                "flag like bursts from brand-new accounts; their signals stop counting"),
        JobSpec("video_stats", 5 * 60, update_video_stats,
                "recount item statistics, baselines, popular list, cold-start cohorts"),
        JobSpec("trends", 5 * 60, detect_trends, "engagement growth over time windows -> trending"),
        JobSpec("item_neighbors", 30 * 60, compute_item_neighbors, "item-to-item co-engagement neighbours"),
        JobSpec("long_term_interests", HOUR, update_long_term_interests, "long-term interest centroids per user"),
        JobSpec("ranker_training", 15 * 60, train_and_promote_ranker,
                "incremental ranker training, held-out evaluation, promotion"),
        JobSpec("sequence_model", 30 * 60, train_sequence_model,
                "GRU4Rec next-item model: the sequence/next source and the ranker's sequence feature"),
        JobSpec("item_activity", 5 * 60, refresh_item_activity,
                "popularity windows (several half-lives) for the candidate-fusion features"),
        JobSpec("candidate_fusion", 6 * HOUR, train_candidate_fusion,
                "learned candidate fusion from prefix/suffix cuts of the log, held-out promotion"),
        JobSpec("vector_index", HOUR, rebuild_vector_index, "faiss IVF nearest-neighbour index for large catalogues"),
        JobSpec("metrics_snapshot", HOUR, snapshot_metrics, "DAU, retention, session length, CTR, engagement"),
    )
}
