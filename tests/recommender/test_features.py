import math

import numpy as np
import pytest

from recommender.catalog import Catalog
from recommender.events import engagement_weight, sessionize
from recommender.features.context import device_one_hot, time_of_day
from recommender.features.decay import DecayedScores
from recommender.features.interests import InterestCentroids
from recommender.types import Item

from .conftest import NOW, TOPICS, ev, topic_vectors


def test_decayed_scores_halve_after_one_half_life():
    scores = DecayedScores(half_life=100.0)
    scores.add("cats", 4.0, now=0.0)
    assert scores.get("cats", 100.0) == pytest.approx(2.0)
    scores.add("cats", 1.0, now=200.0)  # 4 · 0.25 + 1
    assert scores.get("cats", 200.0) == pytest.approx(2.0)


def test_interest_centroids_keep_two_tastes_apart():
    centers = topic_vectors()
    profile = InterestCentroids(capacity=3, half_life=3600, merge_similarity=0.75)
    for i in range(4):
        profile.add(centers["cats"], 1.0, NOW + i)
        profile.add(centers["cars"], 1.0, NOW + i)
    vectors, weights = profile.current(NOW + 10)
    assert len(weights) == 2
    best = sorted(float(np.max(vectors @ centers[t])) for t in ("cats", "cars"))
    assert best[0] > 0.99  # each taste has its own centroid (an average would be ~0.7 to each)


def test_interest_weights_decay_with_time():
    profile = InterestCentroids(capacity=2, half_life=60.0, merge_similarity=0.75)
    profile.add(topic_vectors()["cats"], 1.0, NOW)
    assert profile.current(NOW + 60)[1][0] == pytest.approx(0.5)


def test_sessionize_splits_after_thirty_minutes_of_inactivity():
    events = [ev("u", "view", t, "v") for t in (0, 1000, 2800, 2800 + 1801, 2800 + 1802)]
    assert [len(s) for s in sessionize(events, 1800)] == [3, 2]


def test_time_of_day_is_a_point_on_the_circle():
    six_am = 1_700_000_000 - (1_700_000_000 % 86400) + 6 * 3600
    sin, cos = time_of_day(six_am)
    assert sin == pytest.approx(1.0) and abs(cos) < 1e-9
    midnight = time_of_day(six_am - 6 * 3600)
    assert midnight == pytest.approx((0.0, 1.0))
    assert device_one_hot("Mobile") == (1.0, 0.0, 0.0) and device_one_hot(None) == (0.0, 0.0, 0.0)


def test_engagement_weight_scales_views_and_penalises_quick_swipes():
    weights = {"view": 0.6, "skip": -1.0}
    assert engagement_weight(ev("u", "view", 0, "v", watch_duration=20), 20.0, weights) == pytest.approx(0.6)
    assert engagement_weight(ev("u", "view", 0, "v", watch_duration=10), 20.0, weights) == pytest.approx(0.3)
    assert engagement_weight(ev("u", "view", 0, "v", watch_duration=1), 20.0, weights) < 0
    assert engagement_weight(ev("u", "skip", 0, "v"), 20.0, weights) == -1.0


def test_catalog_keeps_rows_and_vectors_in_step_on_remove():
    catalog = Catalog(initial_capacity=2)
    centers = topic_vectors()
    for i, topic in enumerate(TOPICS):
        catalog.upsert(Item(f"v{i}", "c", centers[topic] * 3, topic=topic))
    assert catalog.remove("v1")
    assert len(catalog) == 3 and "v1" not in catalog
    for item_id, row in catalog.row_of.items():
        topic = catalog.items[row].topic
        assert catalog.items[row].item_id == item_id
        assert np.allclose(catalog.vectors[row], centers[topic], atol=1e-6)  # stored L2-normalised
    cars = catalog.category_vector("cars")
    assert cars is not None and np.allclose(cars / np.linalg.norm(cars), centers["cars"], atol=1e-6)
    assert catalog.category_vector("cooking") is None, "the removed item's topic has no vector left"


def test_catalog_rejects_mixed_dimensions_and_accepts_missing_vectors():
    catalog = Catalog()
    catalog.upsert(Item("a", "c", np.ones(8)))
    catalog.upsert(Item("b", "c", None))
    assert not catalog.has_vector[catalog.row_of["b"]]
    with pytest.raises(ValueError):
        catalog.upsert(Item("c", "c", np.ones(9)))


def test_short_term_profile_updates_immediately_and_resets_next_session(rec):
    rec.record_event(ev("u", "like", NOW, "cats-1"))
    profile = rec.inspect_user("u")
    assert profile["interests"]["short_term"]["topics"][0][0] == "cats"
    assert len(profile["interest_vectors"]["short_term"]) == 1
    rec.record_event(ev("u", "view", NOW + 3600, "cars-1", watch_duration=20))  # > 30 min later: new session
    vectors = rec.inspect_user("u")["interest_vectors"]
    assert len(vectors["short_term"]) == 1 and len(vectors["mid_term"]) == 2


def test_negative_profile_collects_skips_hides_and_reports(rec):
    rec.record_event(ev("u", "skip", NOW, "cars-1"))
    rec.record_event(ev("u", "hide", NOW + 1, "cars-2"))
    profile = rec.inspect_user("u")
    assert profile["interests"]["avoided"]["topics"][0][0] == "cars"
    assert len(profile["interest_vectors"]["negative"]) == 1
    assert math.isclose(profile["interests"]["avoided"]["topics"][0][1], 4.0, rel_tol=1e-3)  # 1 + 3


def test_item_statistics(rec):
    rec.record_event(ev("a", "view", NOW, "cats-1", watch_duration=10))
    rec.record_event(ev("a", "like", NOW + 1, "cats-1"))
    rec.record_event(ev("b", "view", NOW + 2, "cats-1", watch_duration=20))
    rec.record_event(ev("b", "complete_view", NOW + 3, "cats-1"))
    rec.record_event(ev("c", "skip", NOW + 4, "cats-1"))
    stats = rec.inspect_item("cats-1")["stats"]
    assert stats["exposures"] == 3 and stats["views"] == 2
    assert stats["completion_rate"] == pytest.approx(1 / 3)
    assert stats["like_rate"] == pytest.approx(1 / 3) and stats["skip_rate"] == pytest.approx(1 / 3)
    assert stats["mean_watch_ratio"] == pytest.approx((0.5 + 1.0 + 1.0) / 3)  # the complete_view counts as 1.0


def _loop_profile_columns(catalog: Catalog, user, rows: np.ndarray, now: float) -> np.ndarray:
    """The definition the vectorised columns must match: one candidate at a time, from the items themselves."""
    out = np.zeros((len(rows), 6))
    for i, row in enumerate(rows.tolist()):
        item = catalog.items[row]
        if item.category:
            out[i, 0] = user.short_scores.get(("topic", item.category), now)
            out[i, 1] = user.long_score(("topic", item.category), now)
        if item.hashtags:
            out[i, 2] = sum(user.long_score(("hashtag", t), now) + user.short_scores.get(("hashtag", t), now)
                            for t in item.hashtags) / len(item.hashtags)
        out[i, 3] = user.long_score(("creator", item.creator_id), now) + user.short_scores.get(
            ("creator", item.creator_id), now)
        out[i, 4] = item.creator_id in user.follows
        out[i, 5] = item.duration
    return out


@pytest.mark.parametrize("n_rows", [3, 60])  # few rows: looked up per distinct key; many: over the profile
def test_profile_columns_match_a_per_candidate_loop_after_catalogue_changes(n_rows):
    from recommender.config import RecommenderConfig
    from recommender.features.users import UserState
    from recommender.ranking.features import _profile_columns

    rng = np.random.default_rng(3)
    tags = ["cats", "kitten", "cars", "jazz", "food", "diy"]

    def item(i: int, n_tags: int, topic: str | None = None) -> Item:
        return Item(f"i{i}", f"c{i % 7}", hashtags=tuple(rng.choice(tags, size=n_tags).tolist()), topic=topic,
                    duration=float(i % 40))

    catalog = Catalog(initial_capacity=4)
    for i in range(30):
        catalog.upsert(item(i, i % 3, "music" if i % 5 == 0 else None))
    assert catalog._profile_keys is not None  # kept from the first upsert on, never built by a request
    for i in range(30, 80):  # grows the arrays, widens the hashtag columns (5 tags), adds new creators
        catalog.upsert(item(i, 5 if i == 50 else i % 4))
    for i in (3, 79, 12):
        catalog.remove(f"i{i}")
    catalog.upsert(item(20, 2, "cooking"))  # an update in place: its old keys must go
    user = UserState("u", RecommenderConfig())
    for key in [("topic", "music"), ("topic", "kitten"), ("hashtag", "cars"), ("hashtag", "diy"), ("creator", "c2")]:
        user.short_scores.add(key, float(rng.normal()), NOW - 50)
        user.long_positive.add(key, float(rng.random()), NOW - 500)
    user.long_negative.add(("hashtag", "jazz"), 0.7, NOW - 100)
    user.long_negative.add(("creator", "c5"), 0.4, NOW - 100)
    user.follows = {"c3", "nobody"}
    rows = rng.choice(len(catalog), size=n_rows, replace=False)
    expected = _loop_profile_columns(catalog, user, rows, NOW)
    np.testing.assert_array_equal(_profile_columns(catalog, user, rows, NOW), expected)
    # both ways: numpy however few the rows, and item by item however many
    np.testing.assert_array_equal(_profile_columns(catalog, user, rows, NOW, loop_below=0), expected)
    np.testing.assert_array_equal(_profile_columns(catalog, user, rows, NOW, loop_below=n_rows + 1), expected)
    every = _profile_columns(catalog, user, np.arange(len(catalog)), NOW)
    np.testing.assert_array_equal(every, _loop_profile_columns(catalog, user, np.arange(len(catalog)), NOW))
    assert every[:, 1].any() and every[:, 2].any() and every[:, 3].any() and every[:, 4].any()  # profile reached
    assert catalog.profile_keys().codes.shape[1] >= 2 + 5
