"""Offline evaluation harness: tune on a validation split carved from training, evaluate on test.

Every method (ours and each baseline) goes through the same :class:`~.policies.Policy` calls:
``fit(train, items, now)`` then ``recommend(user, k, exclude=<user's training items>, now)``.
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
from .data import Dataset, ItemInfo, load_movielens_100k
from .metrics import Metric, Relevant, auc, make_coverage, make_ild, make_novelty, ndcg, precision, recall
from .policies import Policy, make_baseline
from .splits import Split, global_temporal_split, kfold_splits, user_chronological_split, validation_split

log = logging.getLogger(__name__)

__all__ = [
    "BASELINE_GRIDS",
    "METRIC_SPECS",
    "MethodSpec",
    "evaluate_predictions",
    "predict",
    "run_offline_on",
    "tune",
]

#: Length of the list every method is asked for (AUC is computed over it; the rest of the
#: user's catalogue is tied below it).
LIST_LENGTH = 100

#: The metrics: name -> (metric factory taking the evaluation context, k).
METRIC_SPECS: dict[str, tuple[str, int]] = {
    "ndcg@10": ("ndcg", 10),
    "recall@20": ("recall", 20),
    "precision@10": ("precision", 10),
    "auc": ("auc", LIST_LENGTH),
    "coverage@10": ("coverage", 10),
    "ild@10": ("ild", 10),
    "novelty@10": ("novelty", 10),
}
PRIMARY_METRIC = "ndcg@10"

#: Tuning grids, at most ``budget`` configs each (the first ones are used when the budget is
#: smaller). Ours gets the same budget (see ``foryou_grid`` in :func:`run_offline_on`).
BASELINE_GRIDS: dict[str, list[dict[str, Any]]] = {
    "random": [{}],
    "popularity": [{"signal": "positive"}, {"signal": "all"}, {"signal": "graded"}],
    "recent_popularity": [
        {"signal": "positive", "half_life_days": 7},
        {"signal": "positive", "half_life_days": 30},
        {"signal": "all", "half_life_days": 7},
        {"signal": "all", "half_life_days": 30},
        {"signal": "positive", "half_life_days": 90},
        {"signal": "positive", "half_life_days": 2},
    ],
    "itemknn": [
        {"signal": "all", "neighbours": 100, "shrink": 10},
        {"signal": "positive", "neighbours": 100, "shrink": 10},
        {"signal": "all", "neighbours": 30, "shrink": 10},
        {"signal": "positive", "neighbours": 300, "shrink": 10},
        {"signal": "all", "neighbours": 300, "shrink": 50},
        {"signal": "positive", "neighbours": 30, "shrink": 50},
    ],
    "ease": [
        {"signal": "all", "lam": 250},
        {"signal": "positive", "lam": 250},
        {"signal": "all", "lam": 100},
        {"signal": "all", "lam": 500},
        {"signal": "positive", "lam": 100},
        {"signal": "positive", "lam": 1000},
    ],
    "als": [
        {"signal": "all", "factors": 64, "regularization": 0.05, "alpha": 2.0, "iterations": 15},
        {"signal": "positive", "factors": 64, "regularization": 0.05, "alpha": 2.0, "iterations": 15},
        {"signal": "all", "factors": 32, "regularization": 0.1, "alpha": 5.0, "iterations": 15},
        {"signal": "all", "factors": 128, "regularization": 0.1, "alpha": 1.0, "iterations": 15},
        {"signal": "positive", "factors": 32, "regularization": 0.01, "alpha": 10.0, "iterations": 15},
        {"signal": "all", "factors": 16, "regularization": 0.05, "alpha": 2.0, "iterations": 15},
    ],
    "bpr": [
        {"signal": "all", "factors": 64, "learning_rate": 0.05, "regularization": 0.01, "iterations": 100},
        {"signal": "positive", "factors": 64, "learning_rate": 0.05, "regularization": 0.01, "iterations": 100},
        {"signal": "all", "factors": 32, "learning_rate": 0.02, "regularization": 0.01, "iterations": 200},
        {"signal": "all", "factors": 128, "learning_rate": 0.05, "regularization": 0.001, "iterations": 100},
        {"signal": "positive", "factors": 32, "learning_rate": 0.1, "regularization": 0.01, "iterations": 50},
        {"signal": "all", "factors": 64, "learning_rate": 0.1, "regularization": 0.05, "iterations": 100},
    ],
}

BASELINE_ORDER = ["random", "popularity", "recent_popularity", "itemknn", "als", "bpr", "ease"]
#: Cheap methods that are also run on per-user k-fold splits (best configs from the primary split).
KFOLD_METHODS = ("popularity", "itemknn", "ease")


@dataclass
class MethodSpec:
    """A method to evaluate: a name, a policy factory taking a config dict, and its config grid."""

    name: str
    factory: Callable[[dict[str, Any]], Policy]
    grid: list[dict[str, Any]] = field(default_factory=lambda: [{}])


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


def predict(
    policy: Policy, split: Split, users: Sequence[str], list_length: int = LIST_LENGTH
) -> dict[str, list[str]]:
    """Ask ``policy`` for each user's top ``list_length`` items, excluding their training items."""
    seen = split.train_items_by_user()
    now = split.cutoff
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


def evaluate_predictions(
    predictions: Mapping[str, Mapping[str, Sequence[str]]],
    truth: Mapping[str, Relevant],
    metrics: Mapping[str, Metric],
    n_boot: int,
    seed: int,
    ours: str = "foryou",
) -> dict[str, Any]:
    """Each method's metrics with bootstrap intervals, and paired (ours - baseline) differences."""
    out: dict[str, Any] = {"methods": {}, "comparisons": {}}
    for method, preds in predictions.items():
        out["methods"][method] = {
            name: metric_with_interval(metrics[fn], truth, preds, k, n_boot, seed)
            for name, (fn, k) in METRIC_SPECS.items()
        }
    if ours in predictions:
        for method, preds in predictions.items():
            if method == ours:
                continue
            out["comparisons"][method] = {
                name: paired_difference(metrics[fn], truth, predictions[ours], preds, k, n_boot, seed)
                for name, (fn, k) in METRIC_SPECS.items()
            }
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
    truth = _truth(validation, len(items))
    if users is not None:
        truth = {u: truth[u] for u in users if u in truth}
    coverage = make_coverage(items)
    if len(spec.grid[:budget]) <= 1:  # nothing to choose between: skip the validation fit
        cfg = spec.grid[0] if spec.grid else {}
        return cfg, [{"config": cfg, "ndcg@10": float("nan"), "recall@20": float("nan"),
                      "coverage@10": float("nan"), "seconds": 0.0, "note": "budget 1: not tuned"}]
    trials = []
    first: dict[str, list[str]] | None = None
    for cfg in spec.grid[:budget]:
        t0 = time.perf_counter()
        policy = spec.factory(cfg)
        policy.fit(validation.train, items, validation.cutoff)
        preds = predict(policy, validation, list(truth), list_length=20)
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
                 users: Sequence[str]) -> tuple[dict[str, list[str]], float]:
    t0 = time.perf_counter()
    policy = spec.factory(cfg)
    policy.fit(split.train, items, split.cutoff)
    preds = predict(policy, split, users)
    return preds, time.perf_counter() - t0


def run_offline_on(
    dataset: Dataset,
    methods: Sequence[MethodSpec],
    quick: bool = False,
    seed: int = 0,
    n_boot: int | None = None,
    budget: int | None = None,
    max_users: int | None = None,
    tune_users: int | None = None,
    kfold: int | None = None,
    secondary: bool = True,
) -> dict[str, Any]:
    """Run the offline protocol on ``dataset`` for ``methods``; returns the results dict.

    1. per-user chronological split (last 20% of each user's events are test) -- primary;
    2. a validation split carved from its TRAINING part the same way; every method tries up to
       ``budget`` configs of its grid there (scored on ``tune_users`` sampled validation users),
       the best by NDCG@10 is refitted on the full training part;
    3. test: every method ranks ``LIST_LENGTH`` items per user (training items excluded); metrics
       with bootstrap CIs, paired (foryou - baseline) differences;
    4. the same best configs on a global temporal split (last 20% of events by time), and on a
       per-user random k-fold for cheap methods.
    """
    t_start = time.perf_counter()
    n_boot = n_boot if n_boot is not None else (100 if quick else 1000)
    budget = budget if budget is not None else (1 if quick else 4)
    kfold = kfold if kfold is not None else (0 if quick else 5)
    tune_users = tune_users if tune_users is not None else (100 if quick else 300)
    if max_users is None and quick:
        max_users = 200
    if max_users is not None and len(dataset.user_ids) > max_users:
        rng = random.Random(seed)
        dataset = dataset.subset_users(sorted(rng.sample(dataset.user_ids, max_users)))
    items = dataset.items

    primary = user_chronological_split(dataset.interactions, 0.2)
    validation = validation_split(primary, 0.2)
    val_users = sorted(_truth(validation, len(items)))
    if len(val_users) > tune_users:
        val_users = sorted(random.Random(seed + 1).sample(val_users, tune_users))
    result: dict[str, Any] = {
        "kind": "offline",
        "dataset": dataset.name,
        "quick": quick,
        "seed": seed,
        "n_boot": n_boot,
        "tuning_budget": budget,
        "tuning_users": len(val_users),
        "n_users": len(dataset.user_ids),
        "n_items": len(items),
        "n_interactions": len(dataset.interactions),
        "positive_rule": "relevant = held-out like or complete view (MovieLens: rating >= 4)",
        "list_length": LIST_LENGTH,
        "tuning": {},
        "splits": {},
    }

    best_cfg: dict[str, dict[str, Any]] = {}
    for spec in methods:
        t0 = time.perf_counter()
        cfg, trials = tune(spec, validation, items, budget, val_users, n_boot=min(n_boot, 500), seed=seed)
        best_cfg[spec.name] = cfg
        result["tuning"][spec.name] = {
            "best": cfg,
            "trials": trials,
            "seconds": time.perf_counter() - t0,
            "validation": validation.name,
        }

    split_list = [primary]
    if secondary:
        split_list.append(global_temporal_split(dataset.interactions, 0.2))
    for split in split_list:
        truth = _truth(split, len(items))
        metrics = _metrics(items, split)
        predictions = {}
        timings = {}
        for spec in methods:
            predictions[spec.name], timings[spec.name] = _fit_predict(
                spec, best_cfg[spec.name], split, items, list(truth)
            )
            log.info("%s %s fitted+predicted in %.1fs", split.name, spec.name, timings[spec.name])
        evaluated = evaluate_predictions(predictions, truth, metrics, n_boot, seed)
        evaluated.update(
            {
                "n_train": len(split.train),
                "n_test": len(split.test),
                "n_eval_users": len(truth),
                "seconds": timings,
            }
        )
        result["splits"][split.name] = evaluated

    if kfold:
        folds = kfold_splits(dataset.interactions, kfold, seed)
        per_method: dict[str, list[float]] = {}
        for spec in methods:
            if spec.name not in KFOLD_METHODS:
                continue
            for fold in folds:
                truth = _truth(fold, len(items))
                preds, _ = _fit_predict(spec, best_cfg[spec.name], fold, items, list(truth))
                per_method.setdefault(spec.name, []).append(ndcg(truth, preds, 10))
        result["kfold"] = {
            "k": kfold,
            "metric": "ndcg@10",
            "methods": {
                m: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                    "folds": v}
                for m, v in per_method.items()
            },
        }

    prim = result["splits"][primary.name]
    result["primary_split"] = primary.name
    result["methods"] = prim["methods"]
    result["comparisons"] = prim["comparisons"]
    result["seconds"] = time.perf_counter() - t_start
    return result


def default_methods(seed: int = 0, names: Sequence[str] | None = None) -> list[MethodSpec]:
    return [baseline_spec(n, seed) for n in (names or BASELINE_ORDER)]


def load_dataset(data_dir: str | Path) -> Dataset:
    return load_movielens_100k(data_dir)
