"""Config variants of our recommender and the tuning helper.

Tuning only ever looks at a validation split carved from TRAINING data (the per-user
chronological hold-out of the training part); the test split is never touched here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .data import Dataset
from .embedding import EmbedTexts
from .foryou import ForYouPolicy
from .offline import MethodSpec, _truth, protocol_splits, tune

__all__ = ["FORYOU_GRID", "PURE_RELEVANCE", "SERVED_GRID", "foryou_spec", "foryou_specs", "run_tuning_on"]

DAY = 86_400.0

#: What the app serves minus the page furniture: no MMR diversification, no exploration / new-upload /
#: random-exposure slots -- ForYou asked for a pure relevance list.
PURE_RELEVANCE: dict[str, Any] = {
    "mmr_lambda": 1.0, "cold_user_mmr_lambda": 1.0, "explore_slots": 0, "fresh_slots": 0,
    "cold_user_explore_slots": 0, "random_exposure_share": 0.0,
}

#: Variants of RecommenderConfig tried on validation for ``foryou_tuned`` (relevance lists), in budget
#: order; the first is the app's default. Each is a dict of ``RecommenderConfig.with_overrides`` keys.
FORYOU_GRID: list[dict[str, Any]] = [
    {},
    PURE_RELEVANCE,
    # the ranker's examples from the last 7 days only (the default before 400 days)
    {**PURE_RELEVANCE, "training_window_seconds": 7 * DAY},
    {**PURE_RELEVANCE, "collab_gain": 24.0},
    {**PURE_RELEVANCE, "collab_gain": 8.0},
    {**PURE_RELEVANCE, "popularity_gain": 1.5},
    {**PURE_RELEVANCE, "affinity_gain": 2.5},
    {**PURE_RELEVANCE, "cf_ease_lambda": 100.0},
]

#: Variants of the SERVED defaults (``run_tuning_on(..., served=True)``: pages of 6 with the page furniture), the
#: first being the app's default: how fast a warm viewer's exploration slots taper with evidence, the relevance
#: list without any furniture (what the furniture costs on validation), and the topic cap's earlier setting.
SERVED_GRID: list[dict[str, Any]] = [
    {},
    {"explore_taper_positives": 15.0, "explore_min_page_share": 0.1},  # the default before 5 / 0.02
    {"explore_slots": 0},  # no exploration for warm viewers (cold viewers keep theirs)
    PURE_RELEVANCE,
    {"explore_taper_positives": 0.0},  # every page carries its exploration slot, however long the history
    {"mmr_lambda": 1.0},  # no diversification
    {"max_topic_share": 0.5},  # the topic cap before 0.67: at most half a page from one topic
]


def foryou_spec(
    embed_texts: EmbedTexts,
    vectors: Mapping[str, np.ndarray] | None = None,
    grid: Sequence[dict[str, Any]] | None = None,
    periodic_jobs: bool = True,
    served: bool = False,
    name: str = "foryou_tuned",
) -> MethodSpec:
    """Our recommender as a method of the harness. ``vectors`` caches item embeddings across fits (the
    injected encoder runs once per item)."""
    cache: dict[str, np.ndarray] = vectors if isinstance(vectors, dict) else dict(vectors or {})

    def factory(cfg: dict[str, Any]) -> ForYouPolicy:
        policy = ForYouPolicy(embed_texts, overrides=cfg, periodic_jobs=periodic_jobs, vectors=cache)
        policy.vectors_cache = cache  # share, so new embeddings are kept for the next fit
        return policy

    return MethodSpec(name, factory, list(grid if grid is not None else FORYOU_GRID), served=served)


def foryou_specs(embed_texts: EmbedTexts, periodic_jobs: bool = True) -> list[MethodSpec]:
    """The two named ForYou configs: ``foryou`` -- the app's served defaults, asked page by page (diversity,
    exploration, new-upload and random-exposure slots on; not tuned: it is what the app ships) -- and
    ``foryou_tuned`` -- relevance lists of 100, tuned on validation with the same budget as every baseline."""
    cache: dict[str, np.ndarray] = {}
    served = foryou_spec(embed_texts, cache, grid=[{}], periodic_jobs=periodic_jobs, served=True, name="foryou")
    tuned = foryou_spec(embed_texts, cache, periodic_jobs=periodic_jobs)  # the same embedding cache
    return [served, tuned]


def _findings(trials: list[dict[str, Any]]) -> list[str]:
    base = trials[0]
    out = [f"default config: NDCG@10 {base['ndcg@10']:.4f}, recall@20 {base['recall@20']:.4f}, "
           f"coverage@10 {base['coverage@10']:.3f}"]
    for t in trials[1:]:
        d = t.get("delta_ndcg@10", {})
        lo, hi = d.get("ci", [float("nan")] * 2)
        verdict = "helps" if lo > 0 else ("hurts" if hi < 0 else "no clear effect")
        out.append(
            f"{t['config']}: NDCG@10 {t['ndcg@10']:.4f} (Δ {d.get('diff', float('nan')):+.4f}, "
            f"95% CI [{lo:+.4f}, {hi:+.4f}]: {verdict}); recall@20 {t['recall@20']:.4f}; "
            f"coverage@10 {t['coverage@10']:.3f}"
        )
    return out


def run_tuning_on(
    dataset: Dataset,
    embed_texts: EmbedTexts,
    variants: Sequence[dict[str, Any]] | None = None,
    quick: bool = False,
    seed: int = 0,
    max_users: int | None = None,
    n_boot: int | None = None,
    served: bool = False,
    protocol: str = "user_chrono",
) -> dict[str, Any]:
    """Evaluate config variants of our recommender on a validation split carved from training data (``protocol``:
    per-user chronological or a global time cut, as the outer split). ``served``: rank by the app's feed pages
    (``offline.served_pages``), as the ``foryou`` method is measured, instead of relevance lists.

    Returns the variants with their validation metrics and paired CIs against the default, plus
    plain-language findings ("what moved the numbers").
    """
    import random

    t0 = time.perf_counter()
    n_boot = n_boot if n_boot is not None else (200 if quick else 1000)
    if max_users is None and quick:
        max_users = 150
    if max_users is not None and len(dataset.user_ids) > max_users:
        dataset = dataset.subset_users(sorted(random.Random(seed).sample(dataset.user_ids, max_users)))
    variants = list(variants if variants is not None else FORYOU_GRID)
    if not variants or variants[0]:
        variants = [{}, *[v for v in variants if v]]
    _, validation = protocol_splits(dataset.interactions, protocol)
    spec = foryou_spec(embed_texts, grid=variants, name="foryou", served=served)
    _, trials = tune(spec, validation, dataset.items, len(variants), None, n_boot=n_boot, seed=seed)
    out_variants = []
    for n, t in enumerate(trials):
        out_variants.append(
            {
                "name": "default" if n == 0 else f"variant{n}",
                "overrides": t["config"],
                "ndcg@10": t["ndcg@10"],
                "recall@20": t["recall@20"],
                "coverage@10": t["coverage@10"],
                "delta_ndcg@10": t.get("delta_ndcg@10"),
                "seconds": t["seconds"],
            }
        )
    return {
        "kind": "tuning",
        "dataset": dataset.name,
        "validation": validation.name,
        "served": served,
        "n_eval_users": len(_truth(validation, len(validation.catalogue(dataset.items)))),
        "quick": quick,
        "seed": seed,
        "variants": out_variants,
        "findings": _findings(trials),
        "seconds": time.perf_counter() - t0,
    }
