from __future__ import annotations

import numpy as np
import pytest

from recommender.evaluation import run_simulation, write_report
from recommender.evaluation.data import ItemInfo
from recommender.evaluation.policies import make_baseline
from recommender.evaluation.simulator import (
    SimConfig,
    TopicWorld,
    catalogue_from,
    expected_watch,
    react,
    simulate,
    synthetic_catalogue,
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


def test_reactions_follow_taste():
    rng = np.random.default_rng(0)
    item = ItemInfo("i", "t", duration=10.0)
    loved = [react("u", item, 0.95, 0.0, 0.1, rng) for _ in range(200)]
    hated = [react("u", item, 0.05, 0.0, 0.1, rng) for _ in range(200)]
    assert np.mean([x.liked for x in loved]) > 0.5 > np.mean([x.liked for x in hated])
    assert np.mean([x.skipped for x in hated]) > 0.9
    assert np.mean([x.watch_ratio for x in loved]) > np.mean([x.watch_ratio for x in hated])
    ew = expected_watch(np.array([0.0, 0.5, 1.0]), np.array([10.0, 10.0, 10.0]), 0.1)
    assert ew[0] < ew[1] < ew[2] <= 10.0


def test_simulation_references_and_ordering(embed):
    cat = synthetic_catalogue(120, n_topics=6, n_creators=20, seed=1)
    world = TopicWorld(cat, embed([c.text for c in cat]), CFG)
    res = simulate(world, {"ease": lambda: make_baseline("ease", signal="positive", lam=50)}, CFG, embed)
    m = res["methods"]
    assert m["random"]["gap_share"]["value"] == pytest.approx(0.0)
    assert m["oracle"]["gap_share"]["value"] == pytest.approx(1.0)
    assert m["oracle"]["watch_time_per_session"]["value"] > m["random"]["watch_time_per_session"]["value"]
    assert len(m["ease"]["watch_curve"]) == res["swipes"] == 18
    assert res["shift_at"] % CFG.page_size == 0
    ad = m["oracle"]["adaptation"]
    assert ad["swipes_to_half_median"] == 0.0 and ad["reached_half"] == 1.0  # the oracle adapts at once
    assert 0 < m["ease"]["creator_coverage"] <= 1
    assert "foryou" not in m and res["comparisons"] == {}  # comparisons are ForYou's, and it did not run here


def test_run_simulation_quick_with_foryou_and_report(embed, tmp_path):
    cat = synthetic_catalogue(90, n_topics=5, n_creators=15, seed=2)
    res = run_simulation(cat, embed, config=CFG)
    methods = res["worlds"]["catalogue"]["methods"]
    assert {"foryou", "popularity", "itemknn", "als", "random", "oracle"} <= set(methods)
    assert "gap_share" in methods["foryou"]
    assert set(res["worlds"]["catalogue"]["comparisons"]) == set(methods) - {"foryou"}
    md = write_report({"simulation": res}, tmp_path)
    assert "Swipe simulator" in md.read_text()
    assert (tmp_path / "eval_sim_catalogue_watch.png").exists()
    assert (tmp_path / "eval_sim_catalogue_adaptation.png").exists()
