"""Offline evaluation harness: tune on a validation split carved from training, evaluate on test.

Every method (ours and each baseline) goes through the same :class:`~.policies.Policy` calls:
``fit(train, catalogue, now)`` then ``recommend(user, k, exclude=<user's training items>, now)``, with the same
tuning budget on the same validation split. Two protocols are run and both reported.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .bootstrap import metric_with_interval, paired_difference
from .data import Dataset, Interaction, ItemInfo, load_movielens_100k
from .metrics import Metric, Relevant, auc, make_coverage, make_ild, make_novelty, ndcg, precision, recall
from .policies import Policy, make_baseline
from .splits import Split, global_temporal_split, user_chronological_split, validation_split

log = logging.getLogger(__name__)

__all__ = [
    "BASELINE_GRIDS",
    "METRIC_SPECS",
    "MethodSpec",
    "PROTOCOLS",
    "compare",
    "evaluate_predictions",
    "predict",
    "protocol_splits",
    "run_offline_on",
    "served_pages",
    "tune",
]

#: Length of the relevance list every method is asked for (AUC is computed over it; the rest of the
#: user's catalogue is tied below it).
LIST_LENGTH = 100
#: The app's feed page (``Settings.feed_page_size``) and how many pages the served protocol requests.
PAGE_SIZE = 6
SERVED_PAGES = 4  # 24 items: enough for NDCG@10 / Recall@20; the page metrics read the first 2 pages
PAGE_METRIC_ITEMS = 2 * PAGE_SIZE

#: The metrics: name -> (metric factory taking the evaluation context, k).
METRIC_SPECS: dict[str, tuple[str, int]] = {
    "ndcg@10": ("ndcg", 10),
    "recall@20": ("recall", 20),
    "precision@10": ("precision", 10),
    "page_ndcg@12": ("ndcg", PAGE_METRIC_ITEMS),
    "page_recall@12": ("recall", PAGE_METRIC_ITEMS),
    "auc": ("auc", LIST_LENGTH),
    "coverage@10": ("coverage", 10),
    "ild@10": ("ild", 10),
    "novelty@10": ("novelty", 10),
}
#: The metrics compared pairwise (ours - baseline).
COMPARED_METRICS = ("ndcg@10", "recall@20", "page_ndcg@12", "page_recall@12", "coverage@10")
PRIMARY_METRIC = "ndcg@10"

#: The two protocols: per-user chronological hold-out, and one global time cut.
PROTOCOLS = ("user_chrono", "global_time")

#: The tuning budget: every method, ours included, tries this many configs (its grid's first ones) on the
#: same validation split; a method with a shorter grid tries all of it.
TUNING_BUDGET = 4

#: Tuning grids, ordered so that any prefix spans the space (the first config is the method's default).
BASELINE_GRIDS: dict[str, list[dict[str, Any]]] = {
    "random": [{}],
    "popularity": [{"signal": "graded"}, {"signal": "positive"}, {"signal": "all"}],
    "recent_popularity": [
        {"signal": "graded", "half_life_days": 7},
        {"signal": "positive", "half_life_days": 30},
        {"signal": "graded", "half_life_days": 2},
        {"signal": "positive", "half_life_days": 7},
        {"signal": "graded", "half_life_days": 90},
        {"signal": "all", "half_life_days": 7},
        {"signal": "positive", "half_life_days": 2},
        {"signal": "graded", "half_life_days": 30},
    ],
    "itemknn": [
        {"signal": "graded", "neighbours": 100, "shrink": 10},
        {"signal": "positive", "neighbours": 50, "shrink": 10},
        {"signal": "graded", "neighbours": 400, "shrink": 50},
        {"signal": "positive", "neighbours": 200, "shrink": 50},
        {"signal": "graded", "neighbours": 25, "shrink": 0},
        {"signal": "positive", "neighbours": 100, "shrink": 100},
        {"signal": "all", "neighbours": 100, "shrink": 10},
        {"signal": "positive", "neighbours": 10, "shrink": 10},
    ],
    "ease": [
        {"signal": "graded", "lam": 400},
        {"signal": "positive", "lam": 100},
        {"signal": "positive", "lam": 25},
        {"signal": "graded", "lam": 1600},
        {"signal": "graded", "lam": 100},
        {"signal": "positive", "lam": 400},
        {"signal": "graded", "lam": 25},
        {"signal": "positive", "lam": 1600},
    ],
    "rp3beta": [
        {"signal": "graded", "alpha": 1.0, "beta": 0.5, "neighbours": 100},
        {"signal": "positive", "alpha": 0.8, "beta": 0.3, "neighbours": 200},
        {"signal": "graded", "alpha": 0.6, "beta": 0.2, "neighbours": 50},
        {"signal": "positive", "alpha": 1.0, "beta": 0.7, "neighbours": 100},
        {"signal": "graded", "alpha": 1.2, "beta": 0.4, "neighbours": 300},
        {"signal": "positive", "alpha": 0.5, "beta": 0.5, "neighbours": 50},
        {"signal": "graded", "alpha": 0.8, "beta": 0.0, "neighbours": 100},
        {"signal": "positive", "alpha": 1.0, "beta": 0.5, "neighbours": 25},
    ],
    "als": [
        {"signal": "graded", "factors": 64, "regularization": 0.05, "alpha": 2.0, "iterations": 15},
        {"signal": "positive", "factors": 64, "regularization": 0.05, "alpha": 2.0, "iterations": 15},
        {"signal": "graded", "factors": 32, "regularization": 0.1, "alpha": 5.0, "iterations": 15},
        {"signal": "positive", "factors": 128, "regularization": 0.1, "alpha": 1.0, "iterations": 15},
        {"signal": "graded", "factors": 16, "regularization": 0.01, "alpha": 10.0, "iterations": 15},
        {"signal": "positive", "factors": 32, "regularization": 0.01, "alpha": 10.0, "iterations": 15},
        {"signal": "all", "factors": 64, "regularization": 0.05, "alpha": 2.0, "iterations": 15},
        {"signal": "graded", "factors": 128, "regularization": 0.5, "alpha": 20.0, "iterations": 15},
    ],
    "bpr": [
        {"signal": "graded", "factors": 64, "learning_rate": 0.05, "regularization": 0.01, "iterations": 100},
        {"signal": "positive", "factors": 64, "learning_rate": 0.05, "regularization": 0.01, "iterations": 100},
        {"signal": "graded", "factors": 32, "learning_rate": 0.02, "regularization": 0.01, "iterations": 200},
        {"signal": "positive", "factors": 128, "learning_rate": 0.05, "regularization": 0.001, "iterations": 100},
        {"signal": "graded", "factors": 32, "learning_rate": 0.1, "regularization": 0.01, "iterations": 50},
        {"signal": "all", "factors": 64, "learning_rate": 0.1, "regularization": 0.05, "iterations": 100},
        {"signal": "positive", "factors": 16, "learning_rate": 0.05, "regularization": 0.01, "iterations": 100},
        {"signal": "graded", "factors": 128, "learning_rate": 0.02, "regularization": 0.001, "iterations": 200},
    ],
}

BASELINE_ORDER = ["random", "popularity", "recent_popularity", "itemknn", "als", "bpr", "ease", "rp3beta"]


@dataclass
class MethodSpec:
    """A method to evaluate: a name, a policy factory taking a config dict, and its config grid."""

    name: str
    factory: Callable[[dict[str, Any]], Policy]
    grid: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    #: ``True``: asked page by page as the app serves the feed (``PAGE_SIZE`` items a request, the pages
    #: served so far excluded) instead of for one relevance list of ``LIST_LENGTH``.
    served: bool = False


def baseline_spec(name: str, seed: int = 0) -> MethodSpec:
    def factory(cfg: dict[str, Any]) -> Policy:
        params = dict(cfg)
        if name in {"random", "als", "bpr"}:
            params.setdefault("seed", seed)
        return make_baseline(name, **params)

    return MethodSpec(name, factory, BASELINE_GRIDS.get(name, [{}]))


# -- evaluation ------------------------------------------------------------------------------


def _truth(split: Split, n_items: int) -> dict[str, Relevant]:
    seen = split.train_items_by_user()
    truth = {}
    for user, rel in sorted(split.truth().items()):
        rel = {i for i in rel if i not in seen.get(user, ())}
        if rel:
            truth[user] = Relevant(rel, universe=n_items - len(seen.get(user, ())))
    return truth


def served_pages(
    policy: Policy, user: str, exclude: frozenset[str], now: float | None,
    page_size: int = PAGE_SIZE, n_pages: int = SERVED_PAGES,
) -> list[str]:
    """The first ``n_pages`` feed pages as the app requests them: ``page_size`` items a request, every item
    served so far in the session excluded from the next request (``FeedService.next_page``)."""
    served: list[str] = []
    for _ in range(n_pages):
        page = [i for i in policy.recommend(user, page_size, exclude | frozenset(served), now)
                if i not in exclude and i not in served]
        if not page:
            break
        served.extend(page[:page_size])
    return served


def predict(
    policy: Policy, split: Split, users: Sequence[str], list_length: int = LIST_LENGTH, served: bool = False
) -> dict[str, list[str]]:
    """Each user's ranking from ``policy`` at the split's cut, their training items excluded: one relevance
    list of ``list_length``, or (``served``) the first pages as the app serves them."""
    seen = split.train_items_by_user()
    now = split.cutoff
    if served:
        n_pages = min(SERVED_PAGES, max(1, -(-list_length // PAGE_SIZE)))
        return {u: served_pages(policy, u, frozenset(seen.get(u, ())), now, PAGE_SIZE, n_pages) for u in users}
    return {u: list(policy.recommend(u, list_length, frozenset(seen.get(u, ())), now)) for u in users}


def _metrics(items: Mapping[str, ItemInfo], split: Split) -> dict[str, Metric]:
    pop = Counter()
    users = set()
    for x in split.train:
        pop[x.item_id] += 1
        users.add(x.user_id)
    genres = sorted({g for it in items.values() for g in (it.genres or (it.topic or "",))})
    gindex = {g: n for n, g in enumerate(genres)}
    genre_vectors = {}
    for item_id, it in items.items():
        v = np.zeros(len(genres))
        for g in it.genres or (it.topic or "",):
            v[gindex[g]] = 1.0
        genre_vectors[item_id] = v
    return {
        "ndcg": ndcg,
        "recall": recall,
        "precision": precision,
        "auc": auc,
        "coverage": make_coverage(items),
        "ild": make_ild(genre_vectors),
        "novelty": make_novelty(pop, len(users)),
    }


def compare(
    predictions: Mapping[str, Mapping[str, Sequence[str]]],
    truth: Mapping[str, Relevant],
    metrics: Mapping[str, Metric],
    ours: str,
    n_boot: int,
    seed: int,
    against: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Paired bootstrap (same resampled users) of ``ours`` - each other method, on ``COMPARED_METRICS``."""
    out: dict[str, Any] = {}
    for method, preds in predictions.items():
        if method == ours or (against is not None and method not in against):
            continue
        out[method] = {
            name: paired_difference(metrics[METRIC_SPECS[name][0]], truth, predictions[ours], preds,
                                    METRIC_SPECS[name][1], n_boot, seed)
            for name in COMPARED_METRICS
        }
    return out


def evaluate_predictions(
    predictions: Mapping[str, Mapping[str, Sequence[str]]],
    truth: Mapping[str, Relevant],
    metrics: Mapping[str, Metric],
    n_boot: int,
    seed: int,
    ours: str = "foryou",
) -> dict[str, Any]:
    """Each method's metrics with bootstrap intervals, and paired (ours - other) differences."""
    out: dict[str, Any] = {"methods": {}, "comparisons": {}}
    for method, preds in predictions.items():
        out["methods"][method] = {
            name: metric_with_interval(metrics[fn], truth, preds, k, n_boot, seed)
            for name, (fn, k) in METRIC_SPECS.items()
        }
    if ours in predictions:
        out["comparisons"] = compare(predictions, truth, metrics, ours, n_boot, seed)
    return out


def tune(
    spec: MethodSpec,
    validation: Split,
    items: Mapping[str, ItemInfo],
    budget: int,
    users: Sequence[str] | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Try up to ``budget`` configs on the validation split (carved from training only); return the
    best config by NDCG@10 and every trial, each with a paired bootstrap CI of its NDCG@10
    difference to the first config of the grid (the method's default)."""
    catalogue = validation.catalogue(items)
    truth = _truth(validation, len(catalogue))
    if users is not None:
        truth = {u: truth[u] for u in users if u in truth}
    coverage = make_coverage(catalogue)
    if len(spec.grid[:budget]) <= 1:  # nothing to choose between: skip the validation fit
        cfg = spec.grid[0] if spec.grid else {}
        return cfg, [{"config": cfg, "ndcg@10": float("nan"), "recall@20": float("nan"),
                      "coverage@10": float("nan"), "seconds": 0.0, "note": "one config: not tuned"}]
    trials = []
    first: dict[str, list[str]] | None = None
    for cfg in spec.grid[:budget]:
        t0 = time.perf_counter()
        policy = spec.factory(cfg)
        policy.fit(validation.train, catalogue, validation.cutoff)
        preds = predict(policy, validation, list(truth), list_length=20, served=spec.served)
        trial: dict[str, Any] = {
            "config": cfg,
            "ndcg@10": ndcg(truth, preds, 10),
            "recall@20": recall(truth, preds, 20),
            "coverage@10": coverage(truth, preds, 10),
            "seconds": time.perf_counter() - t0,
        }
        if first is None:
            first = preds
        else:
            trial["delta_ndcg@10"] = paired_difference(ndcg, truth, preds, first, 10, n_boot, seed)
        trials.append(trial)
        log.info("tune %s %s -> %.4f (%.1fs)", spec.name, cfg, trial["ndcg@10"], trial["seconds"])
    best = max(trials, key=lambda t: t["ndcg@10"])
    return best["config"], trials


def _fit_predict(spec: MethodSpec, cfg: dict[str, Any], split: Split, items: Mapping[str, ItemInfo],
                 users: Sequence[str], jobs: dict[str, Any] | None = None) -> tuple[dict[str, list[str]], float]:
    """Fit on the split's training part and rank for ``users``; a policy's periodic-job summaries (ForYou's
    ranker training and promotion) go into ``jobs``."""
    t0 = time.perf_counter()
    policy = spec.factory(cfg)
    policy.fit(split.train, split.catalogue(items), split.cutoff)
    if jobs is not None and getattr(policy, "job_results", None):
        ranker = policy.job_results.get("ranker_training") or {}
        fused = policy.job_results.get("candidate_fusion") or {}
        sequence = policy.job_results.get("sequence_model") or {}
        jobs[spec.name] = {"ranker_training": {k: ranker.get(k) for k in (
            "promoted", "note", "candidate", "prior", "n_train", "n_holdout", "skipped") if k in ranker},
            "candidate_fusion": {k: fused.get(k) for k in (
                "promote", "note", "ndcg@10", "baseline_ndcg@10", "train_users", "holdout_users", "skipped", "error")
                if k in fused},
            # whether the sequence model passed its own gate (held-out recall@k against popularity's) and serves
            "sequence_model": {k: sequence.get(k) for k in (
                "status", "recall", "popularity_recall", "k", "users_held_out", "items", "skipped", "error")
                if k in sequence}}
    preds = predict(policy, split, users, served=spec.served)
    return preds, time.perf_counter() - t0


def protocol_splits(events: Sequence[Interaction], protocol: str, test_fraction: float = 0.2) -> tuple[Split, Split]:
    """(test split, validation split carved from its training part by the same protocol)."""
    if protocol == "user_chrono":
        outer = user_chronological_split(events, test_fraction, name="user_chrono")
    elif protocol == "global_time":
        outer = global_temporal_split(events, test_fraction, name="global_time")
    else:
        raise ValueError(f"unknown protocol {protocol!r}; known: {PROTOCOLS}")
    return outer, validation_split(outer, test_fraction, protocol=protocol)


def run_offline_on(
    dataset: Dataset,
    methods: Sequence[MethodSpec],
    quick: bool = False,
    seed: int = 0,
    n_boot: int | None = None,
    budget: int | None = None,
    max_users: int | None = None,
    tune_users: int | None = None,
    protocols: Sequence[str] = PROTOCOLS,
    ours: str = "foryou",
    ours_tuned: str = "foryou_tuned",
) -> dict[str, Any]:
    """Run both offline protocols on ``dataset`` for ``methods``; returns the results dict.

    For each protocol (``user_chrono``: each user's last 20% of events are test; ``global_time``: the last
    20% of events by time are test, the models are fitted on what came before the cut and every user is
    served at the cut):

    1. a validation split carved from the TRAINING part by the same protocol; every method tries up to
       ``budget`` configs of its grid there (scored on ``tune_users`` sampled validation users) and the
       best by NDCG@10 is refitted on the full training part;
    2. the catalogue each fit sees is the items with a training event, uploaded at their first one;
    3. test: every method ranks ``LIST_LENGTH`` items per user (served methods: the app's pages),
       training items excluded; metrics with bootstrap CIs; paired differences of ``ours`` (and
       ``ours_tuned``) against every other method.
    """
    t_start = time.perf_counter()
    n_boot = n_boot if n_boot is not None else (100 if quick else 1000)
    budget = budget if budget is not None else (1 if quick else TUNING_BUDGET)
    tune_users = tune_users if tune_users is not None else (100 if quick else 150)
    if max_users is None and quick:
        max_users = 200
    if max_users is not None and len(dataset.user_ids) > max_users:
        rng = random.Random(seed)
        dataset = dataset.subset_users(sorted(rng.sample(dataset.user_ids, max_users)))
    items = dataset.items
    result: dict[str, Any] = {
        "kind": "offline",
        "dataset": dataset.name,
        "quick": quick,
        "seed": seed,
        "n_boot": n_boot,
        "tuning_budget": budget,
        "n_users": len(dataset.user_ids),
        "n_items": len(items),
        "n_interactions": len(dataset.interactions),
        "positive_rule": "relevant = held-out like or complete view (MovieLens: rating >= 4)",
        "list_length": LIST_LENGTH,
        "page_size": PAGE_SIZE,
        "served_pages": SERVED_PAGES,
        "served_methods": [m.name for m in methods if m.served],
        "protocols": {},
    }
    baselines = [m.name for m in methods if m.name not in {ours, ours_tuned}]
    for protocol in protocols:
        outer, validation = protocol_splits(dataset.interactions, protocol)
        val_users = sorted(_truth(validation, len(validation.catalogue(items))))
        if len(val_users) > tune_users:
            val_users = sorted(random.Random(seed + 1).sample(val_users, tune_users))
        tuning: dict[str, Any] = {}
        best_cfg: dict[str, dict[str, Any]] = {}
        for spec in methods:
            t0 = time.perf_counter()
            cfg, trials = tune(spec, validation, items, budget, val_users, n_boot=min(n_boot, 500), seed=seed)
            best_cfg[spec.name] = cfg
            tuning[spec.name] = {"best": cfg, "trials": trials, "seconds": time.perf_counter() - t0}
        catalogue = outer.catalogue(items)
        truth = _truth(outer, len(catalogue))
        metrics = _metrics(catalogue, outer)
        predictions, timings, jobs = {}, {}, {}
        for spec in methods:
            predictions[spec.name], timings[spec.name] = _fit_predict(spec, best_cfg[spec.name], outer, items,
                                                                      list(truth), jobs)
            log.info("%s %s fitted+predicted in %.1fs", protocol, spec.name, timings[spec.name])
        evaluated = evaluate_predictions(predictions, truth, metrics, n_boot, seed, ours=ours)
        if ours_tuned in predictions:
            evaluated["comparisons_tuned"] = compare(predictions, truth, metrics, ours_tuned, n_boot, seed,
                                                     against=baselines)
        evaluated.update({
            "validation": validation.name,
            "tuning_users": len(val_users),
            "tuning": tuning,
            "n_train": len(outer.train),
            "n_test": len(outer.test),
            "n_catalogue": len(catalogue),
            "cut": outer.cutoff,
            "n_eval_users": len(truth),
            "seconds": timings,
            "jobs": jobs,
        })
        result["protocols"][protocol] = evaluated

    primary = protocols[0]
    result["primary_protocol"] = primary
    result["methods"] = result["protocols"][primary]["methods"]
    result["comparisons"] = result["protocols"][primary]["comparisons"]
    result["seconds"] = time.perf_counter() - t_start
    return result


def default_methods(seed: int = 0, names: Sequence[str] | None = None) -> list[MethodSpec]:
    return [baseline_spec(n, seed) for n in (names or BASELINE_ORDER)]


def load_dataset(data_dir: str | Path) -> Dataset:
    return load_movielens_100k(data_dir)
