import io
import json

import numpy as np
import pytest

from recommender import FeedContext, Item, Recommender, RecommenderConfig
from recommender.features import collaborative
from recommender.features.items import COUNTERS, RATE_NAMES, C, rate_matrix
from recommender.features.users import UserState
from recommender.ranking.features import FEATURE_NAMES, F
from recommender.ranking.model import TASKS, RankerModel

from .conftest import NOW, ev, make_items


def _co_liked(rec, pairs, users_per_pair=10, at=NOW):
    for a, b in pairs:
        for u in range(users_per_pair):
            rec.record_event(ev(f"fan-{a}-{u}", "like", at + u, a))
            rec.record_event(ev(f"fan-{a}-{u}", "like", at + u, b))


def _scored(rec, user):
    return {c["item_id"]: c["score"] for c in rec.inspect_user(user)["last_recommendation"]["scored"]}


def test_co_engaged_item_outranks_a_merely_popular_one(rec):
    _co_liked(rec, [("cats-1", "music-7")])
    for u in range(40):  # broad appeal, but nobody who liked cats-1 liked it
        rec.record_event(ev(f"crowd{u}", "like", NOW + 50 + u, "cooking-3"))
    rec.run_job("item_neighbors", NOW + 100)
    rec.run_job("video_stats", NOW + 100)
    rec.record_event(ev("u", "like", NOW + 200, "cats-1"))
    page = rec.recommend("u", k=10, context=FeedContext(now=NOW + 210))
    scores = _scored(rec, "u")
    assert "music-7" in [r.item_id for r in page]
    assert scores["music-7"] > scores.get("cooking-3", -np.inf)
    music = next(r for r in page if r.item_id == "music-7")
    assert "People who liked ‹a cats video› also liked this" in music.reasons  # the anchor is named


def test_item2item_job_uses_ease_on_small_catalogues_and_cosine_above(clock, items):
    for config in (RecommenderConfig(), RecommenderConfig(cf_ease_max_items=0)):
        rec = Recommender(config, clock=clock)
        rec.upsert_items(items)
        _co_liked(rec, [("cats-1", "music-7"), ("cars-2", "cooking-4")])
        summary = rec.run_job("item_neighbors", NOW + 100)
        assert summary["method"] == ("ease" if config.cf_ease_max_items else "cosine")
        assert rec.inspect_item("cats-1")["neighbors"][0][0] == "music-7"
        assert rec.inspect_item("music-7")["neighbors"][0][0] == "cats-1"
        assert "cooking-4" not in {i for i, _ in rec.inspect_item("cats-1")["neighbors"]}


def test_a_view_followed_by_a_skip_is_not_co_engagement(rec):
    for u in range(10):
        rec.record_event(ev(f"w{u}", "like", NOW + u, "cats-1"))
        rec.record_event(ev(f"w{u}", "view", NOW + u, "music-7", watch_duration=10.0))
        rec.record_event(ev(f"w{u}", "skip", NOW + u, "music-7"))
    summary = rec.run_job("item_neighbors", NOW + 100)
    assert summary["pairs"] == 0
    assert rec.inspect_item("cats-1")["neighbors"] == []


def _similarity():
    # a0 → n0, a1 → n1, ..., a11 → n11; plus a0 → shared, a11 → shared.
    ids = [f"a{i}" for i in range(12)] + [f"n{i}" for i in range(12)] + ["shared"]
    pos = {item: p for p, item in enumerate(ids)}
    left = np.array([pos[f"a{i}"] for i in range(12)] + [pos["a0"], pos["a11"]])
    right = np.array([pos[f"n{i}"] for i in range(12)] + [pos["shared"], pos["shared"]])
    weight = np.full(len(left), 0.5)
    return collaborative.from_pairs("test", ids, left, right, weight, k=10, version=1)


def test_collaborative_scores_use_every_positive_not_just_the_last_ten():
    config = RecommenderConfig()
    similarity = _similarity()
    user = UserState("u", config)
    for i in range(12):  # a0 is the oldest positive, a11 the newest
        user.record_engagement(f"a{i}", 1.0, NOW + i, config.cf_user_history_items)
    user.record_engagement("a5", -3.0, NOW + 20, config.cf_user_history_items)  # liked, then hidden
    rows = collaborative.catalog_rows(similarity, {item: row for row, item in enumerate(similarity.ids)})
    scores = collaborative.for_user(similarity, rows, user, NOW + 30, config, catalog_version=0)
    by_id = dict(zip(similarity.ids, scores.score[np.arange(len(similarity.ids))].tolist(), strict=True))
    assert by_id["n0"] > 0  # eleven newer positives did not push the oldest out
    assert by_id["n11"] > by_id["n0"]  # ... but recent taste weighs more
    assert by_id["shared"] == max(by_id.values()) == pytest.approx(1.0)  # two anchors agree on it
    assert by_id["n5"] == 0.0  # net-negative engagement is not an anchor
    assert by_id["a3"] == 0.0  # the user's own items are evidence about others, not themselves
    assert scores.support[list(similarity.ids).index("shared")] == 2


def test_served_defaults_weigh_the_anchor_ten_engagements_back_half_as_much():
    config = RecommenderConfig()
    similarity = _similarity()
    user = UserState("u", config)
    for i in range(12):  # seconds apart: age barely separates them, the engagements that followed do
        user.record_engagement(f"a{i}", 1.0, NOW + i, config.cf_user_history_items)
    rows = collaborative.catalog_rows(similarity, {item: row for row, item in enumerate(similarity.ids)})
    scores = collaborative.for_user(similarity, rows, user, NOW + 30, config, catalog_version=0)
    by_id = dict(zip(similarity.ids, scores.score[np.arange(len(similarity.ids))].tolist(), strict=True))
    assert by_id["n1"] / by_id["n11"] == pytest.approx(0.5, rel=1e-3)  # ten newer engagements halve a1's say
    assert by_id["n10"] / by_id["n11"] == pytest.approx(0.5 ** 0.1, rel=1e-3)


def test_collaborative_scores_need_neighbours_and_history():
    config = RecommenderConfig()
    user = UserState("u", config)
    similarity = _similarity()
    rows = collaborative.catalog_rows(similarity, {item: row for row, item in enumerate(similarity.ids)})
    assert collaborative.for_user(similarity, rows, user, NOW, config, 0) is None  # no history
    user.record_engagement("a1", 1.0, NOW, config.cf_user_history_items)
    empty = collaborative.ItemSimilarity.empty()
    assert collaborative.for_user(empty, np.full(len(rows), -1), user, NOW, config, 0) is None


def test_rate_smoothing_on_tiny_counts():
    counts = np.zeros((3, len(COUNTERS)))
    counts[1, [C["exposures"], C["likes"]]] = 1  # one viewer, who liked it
    counts[2, [C["exposures"], C["likes"]]] = [1000, 500]
    rates = rate_matrix(counts, {"like": 0.1}, strength=20.0)[:, RATE_NAMES.index("like")]
    assert rates[0] == pytest.approx(0.1)  # no data: the catalogue rate
    assert rates[1] == pytest.approx(3 / 21)  # one like barely moves it
    assert rates[2] == pytest.approx(502 / 1020)  # plenty of data: its own rate


def _item_row(likes, exposures, global_like=0.55, strength=20.0):
    counts = np.zeros((1, len(COUNTERS)))
    counts[0, [C["exposures"], C["likes"]]] = [exposures, likes]
    X = np.zeros((1, len(FEATURE_NAMES)), dtype=np.float32)
    X[0, F["bias"]] = 1.0
    rates = rate_matrix(counts, {"like": global_like}, strength)
    for i, name in enumerate(RATE_NAMES):
        X[0, F[f"rate_{name}"]] = rates[0, i]
    X[0, F["log_positives"]] = np.log1p(likes) / 10.0
    return X


def test_a_perfect_record_over_a_few_viewers_does_not_beat_broad_appeal():
    defaults = RecommenderConfig()
    model = RankerModel(collab_gain=defaults.collab_gain, popularity_gain=defaults.popularity_gain)
    like = TASKS.index("like")
    niche = model.predict(_item_row(likes=4, exposures=4))[0, like]
    broad = model.predict(_item_row(likes=300, exposures=500))[0, like]
    assert broad > niche
    plain = RankerModel(collab_gain=0.0, popularity_gain=0.0)  # rates alone: the niche item would win
    assert plain.predict(_item_row(4, 4))[0, like] > plain.predict(_item_row(300, 500))[0, like]


def test_collaborative_evidence_raises_positive_outcomes_but_not_abuse_odds():
    model = RankerModel(collab_gain=8.0)
    X = _item_row(likes=10, exposures=20)
    with_evidence = X.copy()
    with_evidence[0, F["collab"]] = 1.0
    before, after = model.predict(X)[0], model.predict(with_evidence)[0]
    assert after[TASKS.index("like")] > before[TASKS.index("like")]
    assert after[TASKS.index("skip")] < before[TASKS.index("skip")]
    assert after[TASKS.index("negative")] == pytest.approx(before[TASKS.index("negative")])


def test_a_ranker_stored_with_an_older_feature_set_keeps_its_weights_by_name():
    old_features = [name for name in FEATURE_NAMES if not name.startswith("collab") and name != "log_positives"]
    weights = np.zeros((len(TASKS), len(old_features)))
    weights[:, old_features.index("sim_short")] = 0.7
    buffer = io.BytesIO()
    meta = {"tasks": TASKS, "features": old_features, "steps": 12, "affinity_gain": 1.25}
    np.savez(buffer, weights=weights, meta=np.array(json.dumps(meta)))
    model = RankerModel.from_bytes(buffer.getvalue())
    assert model.steps == 12 and model.collab_gain == 0.0
    assert np.all(model.weights[:, F["sim_short"]] == 0.7)
    assert np.all(model.weights[:, F["collab"]] == 0.0)


def test_cold_start_slot_sits_where_configured(clock):
    items = make_items()
    rec = Recommender(RecommenderConfig(explore_slots=0, cold_start_slot_position=0.5), clock=clock)
    rec.upsert_items(items)
    rec.upsert_item(Item("brand-new", "newbie", items[0].vector, topic="cats", uploaded_at=NOW - 60))
    for i in range(4):
        rec.record_event(ev("u", "like", NOW + i, f"cats-{i}"))
    page = rec.recommend("u", k=10, context=FeedContext(now=NOW + 10))
    positions = [r.position for r in page if r.item_id == "brand-new"]
    assert positions == [5]


def _random_baskets(n_users, n_items, seed):
    rng = np.random.default_rng(seed)
    popularity = rng.pareto(1.2, n_items) + 0.1
    return [rng.choice(n_items, size=int(rng.integers(2, 12)), replace=False, p=popularity / popularity.sum())
            for _ in range(n_users)]


def _dense(similarity):
    n = len(similarity)
    dense = np.zeros((n, n))
    anchors = np.repeat(np.arange(n), np.diff(similarity.indptr))
    dense[anchors, similarity.neighbors] = similarity.weights
    return dense


def test_exact_ease_in_user_space_matches_the_item_space_solution():
    # 30 users, 80 items: the dual (users < items) must give the primal's weights, not an approximation.
    baskets = _random_baskets(30, 80, seed=3)
    ids = [f"i{j}" for j in range(80)]
    primal = collaborative.ease_primal(ids, baskets, lam=5.0, k=79, version=1)  # every positive weight kept
    dual = collaborative.ease_dual(ids, baskets, lam=5.0, k=79, version=1)
    assert primal.pairs > 100
    assert np.array_equal(primal.indptr, dual.indptr)
    np.testing.assert_allclose(_dense(primal), _dense(dual), rtol=1e-4, atol=1e-6)  # (ties may swap order)
    # and the primal is EASE itself: B = I − P/diag(P) from a plain inverse of the Gram matrix
    X = np.zeros((30, 80))
    for u, basket in enumerate(baskets):
        X[u, basket] = 1.0
    P = np.linalg.inv(X.T @ X + 5.0 * np.eye(80))
    B = -P / np.diag(P)[None, :]
    anchor = int(np.argmax(np.diff(primal.indptr)))
    best = primal.neighbors[primal.indptr[anchor]]
    assert best == max((c for c in range(80) if c != anchor), key=lambda c: B[anchor, c])
    assert primal.weights[primal.indptr[anchor]] == pytest.approx(B[anchor, best], rel=1e-5)


def test_item_neighbors_size_policy(clock, items):
    """Items ≤ cf_ease_max_items: primal; more items than users: exact dual; neither fits: EASE on the most
    engaged head, cosine for the tail."""
    pairs = [("cats-1", "music-7"), ("cars-2", "cooking-4")]
    forms = {}
    for name, config in (("primal", RecommenderConfig()), ("dual", RecommenderConfig(cf_ease_max_items=2)),
                         ("head", RecommenderConfig(cf_ease_max_items=2, cf_ease_dual_max_cells=0))):
        rec = Recommender(config, clock=clock)
        rec.upsert_items(items)
        _co_liked(rec, pairs, users_per_pair=3)
        for i in range(10, 20):  # one broad user: more engaged items (14) than users (7)
            rec.record_event(ev("broad", "like", NOW + i, f"music-{i}"))
        summary = rec.run_job("item_neighbors", NOW + 100)
        forms[name] = summary["form"]
        assert summary["method"] == "ease"
        assert rec.inspect_item("cats-1")["neighbors"][0][0] == "music-7"
        assert rec.inspect_item("cooking-4")["neighbors"][0][0] == "cars-2"  # a tail anchor (cosine) when "head"
    assert forms == {"primal": "primal", "dual": "dual", "head": "head-ease+tail-cosine"}
