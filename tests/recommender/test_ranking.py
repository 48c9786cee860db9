import numpy as np
import pytest

from recommender import FeedContext
from recommender.ranking.features import FEATURE_NAMES, F
from recommender.ranking.model import TASKS, RankerModel
from recommender.ranking.value import trend_boosted, value_scores

from .conftest import NOW, ev


def _features(**values):
    X = np.zeros((1, len(FEATURE_NAMES)), dtype=np.float32)
    X[0, F["bias"]] = 1.0
    for name in FEATURE_NAMES:
        if name.startswith("rate_"):
            X[0, F[name]] = 0.1
    for name, value in values.items():
        X[0, F[name]] = value
    return X


def test_prior_is_sensible_before_any_training():
    model = RankerModel()
    neutral = model.predict(_features())[0]
    assert neutral == pytest.approx(np.full(len(TASKS), 0.1), abs=1e-5)  # no profile: the item's own rates
    matching = model.predict(_features(sim_short=0.4, topic_long=0.8))[0]
    avoided = model.predict(_features(sim_negative=0.5))[0]
    like, skip = TASKS.index("like"), TASKS.index("skip")
    assert matching[like] > neutral[like] > avoided[like]
    assert matching[skip] < neutral[skip] < avoided[skip]


def test_value_model_weights_negative_feedback_heavily():
    weights = {"like": 1.0, "skip": -1.5, "negative": -12.0}
    P = np.zeros((2, len(TASKS)))
    P[0, TASKS.index("like")] = 0.5
    P[1, TASKS.index("like")] = 0.5
    P[1, TASKS.index("negative")] = 0.1
    assert value_scores(P, weights) == pytest.approx([0.5, 0.5 - 1.2])


def test_trend_boost_raises_positive_and_negative_scores():
    boosted = trend_boosted(np.array([2.0, -2.0, 1.0]), np.array([1.0, 1.0, 0.0]), beta=0.5)
    assert boosted == pytest.approx([3.0, -2.0 / 1.5, 1.0])


def test_matching_items_outscore_others_and_reports_sink_an_item(rec, monkeypatch):
    monkeypatch.setattr("recommender.pipeline.TRACE_CANDIDATES", 10_000)  # keep every scored candidate in the trace
    for i in range(4):
        rec.record_event(ev("u", "like", NOW + i, f"cooking-{i}"))
    page = rec.recommend("u", k=10, context=FeedContext(now=NOW + 10))
    scores = {r.item_id: r.score for r in page}
    top_cooking = max(s for i, s in scores.items() if i.startswith("cooking"))
    assert top_cooking == max(scores.values())
    assert all(0.0 <= p <= 1.0 for r in page for p in r.probabilities.values())
    assert set(page[0].probabilities) == set(TASKS)

    # Many viewers hide and report cooking-10: its predicted negative outcome rises and its value drops.
    before = {c["item_id"]: c for c in rec.inspect_user("u")["last_recommendation"]["scored"]}
    assert "cooking-10" in before, "a cooking video is scored for a cooking fan"
    for v in range(30):
        rec.record_event(ev(f"v{v}", "impression", NOW + 20 + v, "cooking-10"))
        rec.record_event(ev(f"v{v}", "report" if v % 2 else "hide", NOW + 21 + v, "cooking-10"))
    rec.run_job("video_stats", NOW + 100)
    rec.recommend("u2", k=10, context=FeedContext(now=NOW + 101))
    for i in range(4):
        rec.record_event(ev("u2", "like", NOW + 102 + i, f"cooking-{i}"))
    rec.recommend("u2", k=10, context=FeedContext(now=NOW + 110))
    after = {c["item_id"]: c for c in rec.inspect_user("u2")["last_recommendation"]["scored"]}
    assert "cooking-10" in after, "still a candidate for the same taste, so its score can be compared"
    negative_before = before["cooking-10"]["probabilities"]["negative"]
    negative_after = after["cooking-10"]["probabilities"]["negative"]
    assert negative_after > 0.2 > negative_before, (negative_before, negative_after)
    rank_of = {item: rank for rank, item in enumerate(sorted(after, key=lambda i: -after[i]["score"]))}
    rank_before = {item: rank for rank, item in enumerate(sorted(before, key=lambda i: -before[i]["score"]))}
    assert rank_of["cooking-10"] > rank_before["cooking-10"] and rank_of["cooking-10"] >= len(after) // 2
    assert "cooking-10" not in {r.item_id for r in rec.recommend("u3", k=20, context=FeedContext(now=NOW + 120))}


def test_follower_count_is_not_a_ranking_factor(rec):
    rec.record_event(ev("u", "like", NOW, "music-1"))
    context = FeedContext(now=NOW + 1, session_id="a")

    def scored():
        rec.recommend("u", k=3, context=context)
        return {c["item_id"]: c["score"] for c in rec.inspect_user("u")["last_recommendation"]["scored"]}

    before = scored()
    for f in range(200):  # music-creator-2 becomes hugely followed by other users
        rec.record_event(ev(f"fan{f}", "follow", NOW + 2, None, creator_id="music-creator-2"))
    after = scored()
    common = set(before) & set(after)
    assert any(rec.inspect_item(i)["creator_id"] == "music-creator-2" for i in common)
    assert {i: before[i] for i in common} == {i: after[i] for i in common}


def test_context_overrides_change_the_value_model_per_request(rec):
    rec.record_event(ev("u", "like", NOW, "music-1"))
    plain = rec.recommend("u", k=5, context=FeedContext(now=NOW + 1, session_id="a"))
    doubled = rec.recommend("u", k=5, context=FeedContext(now=NOW + 1, session_id="b",
                                                         overrides={"value_weights.watch": 10.0}))
    assert max(r.score for r in doubled) > max(r.score for r in plain) + 1.0
    trace = rec.inspect_user("u")["last_recommendation"]
    assert trace["overrides"] == {"value_weights.watch": 10.0}
    assert rec.config.value_weights["watch"] == 0.5
