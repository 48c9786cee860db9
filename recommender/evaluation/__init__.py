"""Measuring the recommender: offline evaluation, a swipe simulator, a tuning helper, a report.

Entry points (called by the app's ``foryou eval offline|simulate|report`` CLI)::

    run_offline(data_dir="data/datasets", embed_texts=None, quick=False, seed=0) -> dict
    run_simulation(catalogue=None, embed_texts=None, quick=False, seed=0, data_dir=None) -> dict
    run_report(data_dir, catalogue=None, embed_texts=None, quick=False, seed=0, workers=None) -> dict
    run_tuning(data_dir="data/datasets", embed_texts=None, quick=False, seed=0, variants=None, served=False,
               protocol="user_chrono") -> dict
    write_report(results, out_dir="benchmarks/results") -> Path
    save_results(results, path) -> Path

``embed_texts(list[str]) -> np.ndarray`` is injected (``recommender`` never imports ``media``);
``None`` means the documented baseline :func:`hashed_bow_embedder`. Results are plain JSON-able
dicts: per method (ours is ``foryou``), each metric as ``{"value", "ci": [lo, hi]}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .data import Dataset, Interaction, ItemInfo, load_movielens_100k
from .embedding import EmbedTexts, hashed_bow_embedder
from .foryou import ForYouPolicy
from .metrics import Relevant, auc, make_coverage, make_ild, make_novelty, ndcg, precision, recall
from .offline import BASELINE_GRIDS, BASELINE_ORDER, PROTOCOLS, baseline_spec, default_methods, run_offline_on
from .policies import Policy, make_baseline
from .report import save_results, write_report
from .simulator import (
    CatalogueWorld,
    MovieLensWorld,
    OracleFactorPolicy,
    SimConfig,
    catalogue_from,
    off_policy_check,
    simulate,
    synthetic_catalogue,
    tune_in_world,
)
from .tuning import FORYOU_GRID, PURE_RELEVANCE, SERVED_GRID, foryou_spec, foryou_specs, run_tuning_on

log = logging.getLogger(__name__)

__all__ = [
    "BASELINE_ORDER",
    "FORYOU_GRID",
    "SERVED_GRID",
    "Dataset",
    "ForYouPolicy",
    "Interaction",
    "ItemInfo",
    "Policy",
    "Relevant",
    "CatalogueWorld",
    "MovieLensWorld",
    "OracleFactorPolicy",
    "SimConfig",
    "auc",
    "catalogue_from",
    "hashed_bow_embedder",
    "load_movielens_100k",
    "make_baseline",
    "make_coverage",
    "make_ild",
    "make_novelty",
    "ndcg",
    "precision",
    "recall",
    "run_offline",
    "run_report",
    "run_simulation",
    "run_tuning",
    "save_results",
    "synthetic_catalogue",
    "write_report",
]

#: Baselines compared in the simulator (plus the random and oracle references).
SIM_BASELINES = ("popularity", "itemknn", "als", "ease", "rp3beta")
#: Configs every policy tries in a world's validation twin (ForYou's simulations are the cost).
SIM_TUNING_BUDGET = 3
#: ForYou's simulator grid: the served defaults first, then knobs that trade exploration against relevance.
FORYOU_SIM_GRID: list[dict[str, Any]] = [
    {},
    {"explore_slots": 2, "cold_user_explore_slots": 4},
    PURE_RELEVANCE,
    {"mmr_lambda": 0.7},
]
#: The random-exposure share of the logging run that checks the off-policy estimate (the app's default is 1%;
#: a simulated day is too short for 1% to give a usable sample).
OFF_POLICY_SHARE = 0.25


def _embedder(embed_texts: EmbedTexts | None) -> tuple[EmbedTexts, str]:
    if embed_texts is None:
        emb = hashed_bow_embedder(64)
        return emb, f"{emb.__name__} (baseline hashed bag-of-words)"
    return embed_texts, getattr(embed_texts, "__name__", type(embed_texts).__name__)


def _blas_one_thread():
    try:
        from threadpoolctl import threadpool_limits

        return threadpool_limits(1, "blas")
    except Exception:  # pragma: no cover
        import contextlib

        return contextlib.nullcontext()


def run_offline(
    data_dir: str | Path = "data/datasets",
    embed_texts: EmbedTexts | None = None,
    quick: bool = False,
    seed: int = 0,
    dataset: Dataset | None = None,
    methods: Iterable[str] | None = None,
    include_foryou: bool = True,
    protocols: Iterable[str] = PROTOCOLS,
) -> dict[str, Any]:
    """Offline evaluation on MovieLens-100k (downloaded into ``data_dir`` on first use).

    Both protocols (per-user chronological, global time cut), every baseline and both ForYou configs
    (``foryou``: the app's served pages; ``foryou_tuned``: relevance lists, tuned like every baseline).
    ``quick``: 200 users, 100 bootstrap resamples, no tuning (each method's default config) -- a smoke
    test, not a measurement. ``dataset`` replaces MovieLens (tests pass a synthetic one).
    """
    embed, embed_name = _embedder(embed_texts)
    data = dataset if dataset is not None else load_movielens_100k(data_dir)
    specs = default_methods(seed, list(methods) if methods is not None else None)
    notes = [
        "MovieLens items have no creators: each movie is its own synthetic creator (mlc<id>), so "
        "creator rules (e.g. never the same creator twice in a row) cannot bind between movies.",
        "Ratings as events: >=4 -> impression+view(full)+complete_view+like; 3 -> impression+view(50%); "
        "<=2 -> impression+view(10%)+skip. Baselines read the same log as a user-item matrix "
        "(which events count is part of each baseline's tuning grid).",
        "Every method is asked for its top 100 (training items excluded) through the same Policy calls; "
        "`foryou` (the app's served defaults) is asked page by page like the app's feed (6 items a request, "
        "4 pages, what was served excluded), so its AUC is over 24 items, not 100. page_* metrics read the "
        "first 2 pages (12 items); AUC ties the rest of the catalogue below the list.",
        "Every baseline reads the same graded events, serves popularity to a user without signal and breaks "
        "ties by popularity; every method (ForYou's tuned config included) tries the same number of configs "
        "on a validation split carved from the training part by the same protocol.",
        "global_time: fitted on the events before one cut in time, every user served at the cut; the "
        "catalogue is the items with a training event, uploaded at their first one (both protocols).",
        "coverage@10 is not a mean over users: its bootstrap interval (resampled users, fewer distinct) is "
        "biased low and may sit below the point value; compare coverage differences, not its interval.",
    ]
    if include_foryou:
        specs = [*foryou_specs(embed), *specs]
    with _blas_one_thread():
        result = run_offline_on(data, specs, quick=quick, seed=seed, protocols=list(protocols))
    result["embedder"] = embed_name
    result["notes"] = notes
    return result


def run_simulation(
    catalogue: Iterable[Any] | None = None,
    embed_texts: EmbedTexts | None = None,
    quick: bool = False,
    seed: int = 0,
    data_dir: str | Path | None = None,
    dataset: Dataset | None = None,
    config: SimConfig | None = None,
    include_foryou: bool = True,
    budget: int | None = None,
    worlds_to_run: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Swipe simulation in latent-factor worlds the recommender's model is not (see ``simulator``).

    * ``catalogue`` (items with topics: ``recommender.Item``, :class:`ItemInfo` or manifest dicts;
      ``None`` = a synthetic catalogue) -> :class:`CatalogueWorld`;
    * ``data_dir`` or ``dataset`` (MovieLens) -> also :class:`MovieLensWorld` (``data_dir`` is ignored when
      ``quick``: the quick smoke run simulates the catalogue world only).

    Every policy (ForYou's served defaults, and each baseline) tries ``budget`` configs in the world's
    validation twin; the best by watch time runs in the test world beside the random and oracle references.
    In the catalogue world a logging run of ForYou with its random-exposure slice raised to
    ``OFF_POLICY_SHARE`` checks SNIPS estimates against the simulated truth.
    """
    t0 = time.perf_counter()
    embed, embed_name = _embedder(embed_texts)
    cfg = config or (
        SimConfig(n_users=30, swipes=24, n_background_users=120, n_boot=200, seed=seed)
        if quick
        else SimConfig(n_users=60, swipes=48, n_background_users=400, n_boot=1000, seed=seed)
    )
    budget = budget if budget is not None else (1 if quick else SIM_TUNING_BUDGET)
    items = catalogue_from(catalogue) if catalogue is not None else synthetic_catalogue(seed=seed)
    if dataset is None and data_dir is not None and not quick:
        dataset = load_movielens_100k(data_dir)
    spec = foryou_spec(embed, name="foryou")
    makers: dict[str, tuple[Any, list[dict[str, Any]]]] = {}
    if include_foryou:
        makers["foryou"] = (spec.factory, FORYOU_SIM_GRID)
    for name in SIM_BASELINES:
        makers[name] = (baseline_spec(name, seed).factory, BASELINE_GRIDS[name])

    def validation_config(c: SimConfig) -> SimConfig:
        return SimConfig(**{**c.__dict__, "n_users": max(c.n_users // 4, 8)})

    pairs: list[tuple[str, Any, Any, SimConfig]] = []
    val_cfg = validation_config(cfg)
    pairs.append(("catalogue", CatalogueWorld(items, cfg, 0), CatalogueWorld(items, val_cfg, 1), cfg))
    if dataset is not None:
        # ForYou's periodic jobs over the background log dominate the cost; simulated users arrive within
        # 6 hours here (fewer scheduler ticks) and there are half as many of them
        ml_cfg = SimConfig(**{**cfg.__dict__, "n_users": max(cfg.n_users // 2, 10), "day_seconds": 6 * 3600.0})
        pairs.append((dataset.name, MovieLensWorld(dataset, ml_cfg, 0),
                      MovieLensWorld(dataset, validation_config(ml_cfg), 1), ml_cfg))
    if worlds_to_run is not None:
        pairs = [p for p in pairs if p[0] in set(worlds_to_run)]
    worlds: dict[str, Any] = {}
    with _blas_one_thread():
        for name, test_world, val_world, world_cfg in pairs:
            tuning: dict[str, Any] = {}
            policies: dict[str, Any] = {}
            for method, (make, grid) in makers.items():
                best, trials = tune_in_world(make, grid, val_world, validation_config(world_cfg), budget)
                tuning[method] = {"best": best, "trials": trials}
                policies[method] = (lambda make=make, best=best: make(best))
                if method == "foryou" and best:  # the served defaults always run; the tuned config beside them
                    policies["foryou"] = (lambda make=make: make({}))
                    policies["foryou_tuned"] = (lambda make=make, best=best: make(best))
            result = simulate(test_world, policies, world_cfg, embed)
            result["tuning"] = tuning
            result["validation_users"] = len(val_world.user_ids)
            if name == "catalogue" and include_foryou:
                logging_policy = spec.factory({"random_exposure_share": OFF_POLICY_SHARE})
                targets = {m: policies[m] for m in ("popularity", "ease") if m in policies}
                targets["oracle"] = lambda w=test_world: OracleFactorPolicy(w)
                result["off_policy"] = off_policy_check(test_world, logging_policy, targets, world_cfg,
                                                        OFF_POLICY_SHARE)
            worlds[name] = result
    return {
        "kind": "simulation",
        "quick": quick,
        "seed": seed,
        "embedder": embed_name,
        "catalogue": "given" if catalogue is not None else "synthetic",
        "tuning_budget": budget,
        "worlds": worlds,
        "methods": next(iter(worlds.values()))["methods"] if worlds else {},
        "seconds": time.perf_counter() - t0,
        "notes": [
            "Worlds: latent factors, not ForYou's features. Catalogue world: item factors around topic centres "
            "and creator styles plus an item's own draw (topics explain about a third of the taste). MovieLens "
            "world: a biased matrix factorisation fitted on 40% of the users, who are the simulated users; "
            "the recommender's background log is the other 60%'s real ratings.",
            "Reactions: the simulator's own watch model (early swipe-away around affinity 0.35, Beta partial "
            "watches, watch-to-the-end with probability a^2, likes 0.5 a^3, hides after swipe-aways), not "
            "ForYou's thresholds.",
            "Users arrive cold (no history) one after another; the policy sees each event immediately. "
            "ForYou's periodic jobs run on their scheduler intervals in simulated time; baselines keep their "
            "fitted model and update user histories / counts live.",
            "Tuning: every policy (ForYou included) tries the same number of configs in a validation twin of "
            "each world (other simulated users); the best by watch time per session runs in the test world.",
            "Half way through the session each user's taste is swapped for another simulated user's; the "
            "adaptation curve is the share of each next page from the new taste's top decile (less the old).",
        ],
    }


def run_tuning(
    data_dir: str | Path = "data/datasets",
    embed_texts: EmbedTexts | None = None,
    quick: bool = False,
    seed: int = 0,
    variants: list[dict[str, Any]] | None = None,
    dataset: Dataset | None = None,
    served: bool = False,
    protocol: str = "user_chrono",
) -> dict[str, Any]:
    """Evaluate RecommenderConfig variants on a validation split carved from training data only (``served``: as
    the app's feed pages, over ``SERVED_GRID`` unless ``variants`` are given)."""
    embed, embed_name = _embedder(embed_texts)
    data = dataset if dataset is not None else load_movielens_100k(data_dir)
    grid = variants or (SERVED_GRID if served else FORYOU_GRID)
    with _blas_one_thread():
        result = run_tuning_on(data, embed, grid, quick=quick, seed=seed, served=served, protocol=protocol)
    result["embedder"] = embed_name
    return result


# -- the full report, in parallel worker processes --------------------------------------------------------


class TableEmbedder:
    """Text vectors computed once by the injected encoder, looked up by text: picklable, so worker processes
    share one encoder's output without loading the encoder themselves."""

    def __init__(self, table: dict[str, Any], name: str) -> None:
        self.table = table
        self.__name__ = name

    def __call__(self, texts: list[str]) -> Any:
        import numpy as np

        if not texts:
            dim = len(next(iter(self.table.values()))) if self.table else 0
            return np.zeros((0, dim), dtype=np.float32)
        return np.stack([self.table[t] for t in texts]).astype(np.float32)


def _report_part(kind: str, where: str, data_dir: str, catalogue: list[Any] | None, embed_texts: Any,
                 quick: bool, seed: int) -> tuple[str, str, dict[str, Any], float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    if kind == "offline":
        result = run_offline(data_dir, embed_texts=embed_texts, quick=quick, seed=seed, protocols=[where])
    else:
        result = run_simulation(catalogue, embed_texts=embed_texts, quick=quick, seed=seed, data_dir=data_dir,
                                worlds_to_run=[where])
    return kind, where, result, time.perf_counter() - wall, time.process_time() - cpu


def run_report(
    data_dir: str | Path = "data/datasets",
    catalogue: Iterable[Any] | None = None,
    embed_texts: EmbedTexts | None = None,
    quick: bool = False,
    seed: int = 0,
    workers: int | None = None,
) -> dict[str, Any]:
    """``run_offline`` and ``run_simulation`` as four independent parts (one per protocol, one per world), run
    in ``workers`` processes (default: one per CPU, at most four), merged into ``{"offline", "simulation"}``
    exactly as the two calls would return them, plus the wall and CPU seconds of each part. Same code, same
    seeds: the parts do not share state, so the figures do not depend on ``workers``."""
    import concurrent.futures
    import contextlib
    import multiprocessing
    import os

    t0 = time.perf_counter()
    data_dir = str(data_dir)
    dataset = load_movielens_100k(data_dir)
    catalogue = list(catalogue) if catalogue is not None else None
    items = catalogue_from(catalogue) if catalogue is not None else synthetic_catalogue(seed=seed)
    embedder: Any = None
    if embed_texts is not None:
        texts = sorted({it.text for it in dataset.items.values()} | {it.text for it in items})
        vectors = embed_texts(texts)
        embedder = TableEmbedder(dict(zip(texts, vectors, strict=True)), _embedder(embed_texts)[1])
    parts = [("simulation", dataset.name), ("simulation", "catalogue"), ("offline", "user_chrono"),
             ("offline", "global_time")]  # longest first
    if quick:  # the quick simulation runs the catalogue world only
        parts.remove(("simulation", dataset.name))
    workers = max(1, min(len(parts), workers or os.cpu_count() or 1))
    done: dict[tuple[str, str], tuple[dict[str, Any], float, float]] = {}
    if workers == 1:
        for kind, where in parts:
            *_, result, wall, cpu = _report_part(kind, where, data_dir, catalogue, embedder, quick, seed)
            done[(kind, where)] = (result, wall, cpu)
    else:
        context = multiprocessing.get_context("spawn")  # no forked copy of the encoder's threads
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [pool.submit(_report_part, kind, where, data_dir, catalogue, embedder, quick, seed)
                       for kind, where in parts]
            for future in futures:
                kind, where, result, wall, cpu = future.result()
                done[(kind, where)] = (result, wall, cpu)
    timing = {f"{kind}/{where}": {"wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1)}
              for (kind, where), (_, wall, cpu) in done.items()}

    offline_parts = [done[p][0] for p in parts if p[0] == "offline"]
    offline = dict(offline_parts[0])
    offline["protocols"] = {}
    for protocol in PROTOCOLS:
        for part in offline_parts:
            if protocol in part["protocols"]:
                offline["protocols"][protocol] = part["protocols"][protocol]
    primary = next(iter(offline["protocols"]))
    offline.update(primary_protocol=primary, methods=offline["protocols"][primary]["methods"],
                   comparisons=offline["protocols"][primary]["comparisons"],
                   seconds=sum(p["seconds"] for p in offline_parts))
    sim_parts = [done[p][0] for p in sorted((p for p in parts if p[0] == "simulation"),
                                            key=lambda p: p[1] != "catalogue")]
    simulation = dict(sim_parts[0])
    simulation["worlds"] = {w: r for part in sim_parts for w, r in part["worlds"].items()}
    simulation.update(methods=next(iter(simulation["worlds"].values()))["methods"],
                      seconds=sum(p["seconds"] for p in sim_parts))
    wall = time.perf_counter() - t0
    run = {"workers": workers, "wall_seconds": round(wall, 1), "parts": timing,
           "cpu_seconds": round(sum(v["cpu_seconds"] for v in timing.values()), 1)}
    with contextlib.suppress(OSError):
        run["load_average"] = [round(x, 2) for x in os.getloadavg()]
    offline["run"] = simulation["run"] = run
    return {"offline": offline, "simulation": simulation}
