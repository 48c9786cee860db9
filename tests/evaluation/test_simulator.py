"""The swipe simulator: latent-factor worlds, its own watch model, the oracle wins, SNIPS finds the truth."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.evaluation import run_simulation, write_report
from recommender.evaluation.data import Dataset, ItemInfo, interaction_from_rating
from recommender.evaluation.off_policy import snips
from recommender.evaluation.policies import make_baseline
from recommender.evaluation.simulator import (
    CatalogueWorld,
    MovieLensWorld,
    OracleFactorPolicy,
    SimConfig,
    WatchModel,
    _run_policy,
    catalogue_from,
    fit_rating_factors,
    off_policy_check,
    simulate,
    synthetic_catalogue,
    tune_in_world,
)

CFG = SimConfig(n_users=12, swipes=18, page_size=6, n_background_users=40, background_events=15, n_boot=50)


def test_synthetic_catalogue_is_deterministic():
    a, b = synthetic_catalogue(50, seed=3), synthetic_catalogue(50, seed=3)
    assert a == b
    assert {it.topic for it in a} <= {"space", "cats", "coffee", "cooking", "fitness", "music", "travel", "gaming"}


def test_catalogue_from_accepts_manifest_dicts_and_items():
    cat = catalogue_from([
        {"id": 1, "creator": "orbit.ollie", "caption": "Launch day #space", "topic": "space", "duration_s": 7.5,
         "hashtags": ["space"]},
        ItemInfo("x", "text", topic="cats"),
    ])
    assert cat[0].item_id == "1" and cat[0].creator_id == "orbit.ollie" and cat[0].duration == 7.5
    assert cat[1].item_id == "x"


def test_watch_model_follows_taste_with_its_own_parameters():
    rng = np.random.default_rng(0)
    model = WatchModel()
    item = ItemInfo("i", "t", duration=10.0)
    loved = [model.react("u", item, 0.95, 0.0, rng) for _ in range(400)]
    hated = [model.react("u", item, 0.05, 0.0, rng) for _ in range(400)]
    assert np.mean([x.liked for x in loved]) > 0.3 > np.mean([x.liked for x in hated])
    assert np.mean([x.skipped for x in hated]) > 0.9 > 0.1 > np.mean([x.skipped for x in loved])
    ratios = np.array([x.watch_ratio for x in loved])
    assert abs(ratios.mean() - model.expected_ratio(np.array([0.95]))[0]) < 0.03  # closed form = simulation
    assert np.all(np.diff(model.expected_ratio(np.linspace(0, 1, 11))) > 0)


def test_catalogue_world_tastes_are_not_the_topic_labels():
    cat = synthetic_catalogue(200, n_topics=6, n_creators=30, seed=1)
    world = CatalogueWorld(cat, SimConfig(n_users=200, n_background_users=10))
    topic_means = np.stack([world.affinity[:, world.topic_of == t].mean(axis=1) for t in range(len(world.topics))],
                           axis=1)
    explained = topic_means[:, world.topic_of].var() / world.affinity.var()
    assert 0.1 < explained < 0.7  # topics explain part of the taste, not all of it


def test_validation_twin_has_other_users_and_the_same_items():
    cat = synthetic_catalogue(80, seed=2)
    test_world, twin = CatalogueWorld(cat, CFG, 0), CatalogueWorld(cat, CFG, 1)
    assert np.allclose(test_world.item_factors, twin.item_factors)
    assert not np.allclose(test_world.user_factors, twin.user_factors)
    assert {x.user_id for x in test_world.background} == {x.user_id for x in twin.background}


def _ratings_dataset(n_users: int = 60, n_items: int = 40, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    users, items = rng.normal(size=(n_users, 3)), rng.normal(size=(n_items, 3))
    catalogue = {str(i): ItemInfo(str(i), f"movie {i}", topic=f"g{i % 4}") for i in range(n_items)}
    log = []
    for u in range(n_users):
        for i in rng.choice(n_items, 20, replace=False):
            rating = float(np.clip(np.round(3 + users[u] @ items[i] + rng.normal(0, 0.5)), 1, 5))
            log.append(interaction_from_rating(f"u{u}", str(i), 1000.0 + u * 50 + i, rating))
    return Dataset("toy-ratings", catalogue, log)


def test_movielens_world_is_fitted_on_users_the_recommender_never_sees():
    data = _ratings_dataset()
    world = MovieLensWorld(data, SimConfig(n_users=10), 0)
    twin = MovieLensWorld(data, SimConfig(n_users=10), 1)
    simulated = {u.removeprefix("mlsim") for u in world.user_ids + twin.user_ids}
    background_users = {x.user_id for x in world.background}
    assert simulated and not simulated & background_users
    assert not set(world.user_ids) & set(twin.user_ids)
    assert max(x.timestamp for x in world.background) < world.start_time
    # the factor fit reproduces the ratings it was fitted on better than the mean does
    ratings = [(0, 0, 5.0), (0, 1, 1.0), (1, 0, 5.0), (1, 1, 1.0), (2, 0, 1.0), (2, 1, 5.0)] * 3
    fit = fit_rating_factors(ratings, 3, 2, rank=2, reg=0.1, iterations=20)
    pred = fit["mu"] + fit["user_bias"][:, None] + fit["item_bias"][None, :] + fit["U"] @ fit["V"].T
    assert pred[0, 0] > 4 and pred[2, 0] < 2


def test_the_oracle_with_the_worlds_factors_beats_every_other_policy():
    cat = synthetic_catalogue(120, n_topics=6, n_creators=20, seed=1)
    cfg = SimConfig(n_users=40, swipes=18, n_background_users=60, background_events=15, n_boot=300)
    world = CatalogueWorld(cat, cfg)
    policies = {name: (lambda n=name, p=params: make_baseline(n, **p)) for name, params in (
        ("popularity", {}), ("ease", {"lam": 50}), ("itemknn", {}), ("rp3beta", {}))}
    res = simulate(world, policies, cfg, lambda texts: np.eye(len(texts)), ours="oracle")
    m = res["methods"]
    assert m["random"]["gap_share"]["value"] == pytest.approx(0.0)
    assert m["oracle"]["gap_share"]["value"] == pytest.approx(1.0)
    for name, comparison in res["comparisons"].items():  # oracle - other, paired over the same users
        assert comparison["watch_time_per_session"]["ci"][0] > 0, name
    # and the simulator can tell a learner from noise: EASE beats random
    assert m["ease"]["watch_time_per_session"]["value"] > m["random"]["watch_time_per_session"]["value"]
    assert len(m["ease"]["watch_curve"]) == res["swipes"] == 18 and res["shift_at"] % cfg.page_size == 0
    ad = m["oracle"]["adaptation"]
    assert ad["curve"][0] > 0.8  # the oracle follows the new taste at once
    assert 0 < m["ease"]["creator_coverage"] <= 1


class RandomSliceLogger:
    """A test logging policy: popularity pages whose every slot is, with probability ``share``, an item drawn
    uniformly from the user's unseen items (propensity logged), like the recommender's random-exposure slice."""

    def __init__(self, share: float, seed: int = 0) -> None:
        self.inner = make_baseline("popularity")
        self.share = share
        self.rng = np.random.default_rng(seed)
        self.last_page: list = []

    def fit(self, train, items, now):
        self.items = sorted(items)
        self.inner.fit(train, items, now)

    def observe(self, event):
        self.inner.observe(event)

    def recommend(self, user, k, exclude=frozenset(), now=None):
        from types import SimpleNamespace

        base = self.inner.recommend(user, k, exclude, now)
        pool = [i for i in self.items if i not in exclude]
        page = []
        for item in base:
            if self.rng.random() < self.share:
                pick = pool[int(self.rng.integers(len(pool)))]
                if pick not in (p.item_id for p in page):
                    page.append(SimpleNamespace(item_id=pick, source="random", propensity=1.0 / len(pool)))
                    continue
            if item not in (p.item_id for p in page):
                page.append(SimpleNamespace(item_id=item, source="popular", propensity=None))
        self.last_page = page
        return [p.item_id for p in page]


def test_snips_estimate_is_within_its_interval_of_the_simulated_truth():
    cat = synthetic_catalogue(40, n_topics=5, n_creators=10, seed=4)
    cfg = SimConfig(n_users=60, swipes=24, n_background_users=40, background_events=15, n_boot=400, seed=1)
    world = CatalogueWorld(cat, cfg)
    targets = {"oracle": lambda: OracleFactorPolicy(world), "popularity": lambda: make_baseline("popularity"),
               "random": lambda: make_baseline("random", seed=3)}
    res = off_policy_check(world, RandomSliceLogger(0.5), targets, cfg, share=0.5)
    assert res["share_test"]["p_value"] > 0.001
    for name, estimate in res["targets"].items():
        assert estimate["effective_n"] > 30, name
        assert estimate["truth_in_interval"], (name, estimate)
    # and the estimate can tell the oracle from random
    assert res["targets"]["oracle"]["ci"][0] > res["targets"]["random"]["ci"][1]


def test_snips_weights_and_interval():
    rewards = np.array([1.0, 0.0, 1.0, 0.0])
    est = snips(rewards, np.array([1.0, 0.0, 0.5, 0.5]), np.array([0.5, 0.5, 0.25, 0.5]), n_boot=200)
    assert est["value"] == pytest.approx((2 * 1 + 2 * 1 + 1 * 0) / (2 + 2 + 1))
    assert est["ci"][0] <= est["value"] <= est["ci"][1]
    with pytest.raises(ValueError):
        snips(rewards, np.ones(4), np.zeros(4))


def test_run_simulation_quick_with_foryou_and_report(embed, tmp_path):
    cat = synthetic_catalogue(90, n_topics=5, n_creators=15, seed=2)
    res = run_simulation(cat, embed, config=CFG, budget=1)
    world = res["worlds"]["catalogue"]
    methods = world["methods"]
    assert {"foryou", "popularity", "itemknn", "als", "ease", "rp3beta", "random", "oracle"} <= set(methods)
    assert "gap_share" in methods["foryou"]
    assert set(world["comparisons"]) == set(methods) - {"foryou"}
    assert len(world["comparisons"]["ease"]["gap_share"]["ci"]) == 2
    assert set(world["off_policy"]["targets"]) == {"popularity", "ease", "oracle"}
    md = write_report({"simulation": res}, tmp_path)
    text = md.read_text()
    assert "Swipe simulator" in text and "SNIPS" in text
    assert (tmp_path / "eval_sim_catalogue_watch.png").exists()
    assert (tmp_path / "eval_sim_catalogue_adaptation.png").exists()


def test_tuning_picks_the_best_config_in_the_validation_twin():
    cat = synthetic_catalogue(80, seed=6)
    twin = CatalogueWorld(cat, CFG, 1)
    grid = [{"signal": "graded", "lam": 50.0}, {"signal": "graded", "lam": 1e7}]  # a huge lambda: no signal left
    best, trials = tune_in_world(lambda cfg: make_baseline("ease", **cfg), grid, twin, CFG, budget=2)
    assert len(trials) == 2 and best == max(trials, key=lambda t: t["watch_time_per_session"])["config"]
    assert tune_in_world(lambda cfg: make_baseline("ease", **cfg), grid, twin, CFG, budget=1)[0] == grid[0]


def test_the_simulated_run_is_the_same_for_the_same_seed():
    cat = synthetic_catalogue(60, seed=5)
    world = CatalogueWorld(cat, CFG)
    a = _run_policy(make_baseline("ease", lam=50), world, CFG)
    b = _run_policy(make_baseline("ease", lam=50), world, CFG)
    assert a.watch == b.watch
