"""Candidate fusion: labels from prefix/suffix cuts, learning a known structure, gated promotion, serving."""

from __future__ import annotations

import numpy as np
import pytest

from recommender import Recommender, RecommenderConfig, fusion
from recommender.candidates import SOURCE_ORDER
from recommender.evaluation.data import Interaction
from recommender.evaluation.foryou import to_events

from .conftest import NOW, ev, make_items

DAY = 86_400.0


def test_fusion_features_name_every_candidate_source():
    ranked = {name.removeprefix("rank:") for name in fusion.FEATURE_NAMES if name.startswith("rank:")}
    assert ranked == set(SOURCE_ORDER)


def test_user_cut_labels_match_hand_computed_ones():
    t = NOW
    events = [
        # u1 meets a, b, c, d, e in that order (5 items): the last 20% (one item, e) is the suffix.
        ev("u1", "impression", t + 0, "a"), ev("u1", "like", t + 5, "a"),
        ev("u1", "impression", t + 10, "b"), ev("u1", "complete_view", t + 15, "b"),
        ev("u1", "impression", t + 20, "c"),
        ev("u1", "impression", t + 30, "d"),
        ev("u1", "impression", t + 40, "e"), ev("u1", "like", t + 45, "e"),
        ev("u1", "like", t + 50, "a"),  # after the cut, but a is in the prefix: not a label
        # u2 has 10 items: the last two (i8, i9) are the suffix; i8 only viewed (no label), i9 completed.
        *[ev("u2", "impression", t + 100 + 10 * i, f"i{i}") for i in range(10)],
        ev("u2", "view", t + 185, "i8"), ev("u2", "complete_view", t + 195, "i9"),
        # u3 has too few items to be cut: stays whole in the replay.
        ev("u3", "impression", t + 1, "a"), ev("u3", "like", t + 2, "a"),
    ]
    known = {"a", "b", "c", "d", "e", *[f"i{i}" for i in range(10)]}
    cut = fusion.cut_user_histories(events, known, suffix_fraction=0.2, min_items=5)
    assert cut.kind == "user"
    assert cut.positives == {"u1": {"e"}, "u2": {"i9"}}
    assert cut.prefix_items["u1"] == {"a", "b", "c", "d"}
    assert cut.prefix_items["u2"] == {f"i{i}" for i in range(8)}
    kept = {(e.user_id, e.item_id, e.event_type) for e in cut.kept}
    assert ("u1", "d", "impression") in kept and ("u1", "e", "impression") not in kept
    assert ("u1", "a", "like") in kept and sum(1 for e in cut.kept if e.user_id == "u1") == 6
    assert ("u2", "i8", "impression") not in kept and ("u3", "a", "like") in kept
    assert cut.now == max(e.timestamp for e in cut.kept)


def test_time_cut_labels_match_hand_computed_ones():
    t = NOW
    events = [
        ev("u1", "impression", t, "a"), ev("u1", "like", t + 1, "a"),
        ev("u1", "impression", t + 100, "b"), ev("u1", "like", t + 101, "b"),  # after the cut: a label
        ev("u1", "like", t + 102, "a"),  # already met before the cut: not a label
        ev("u2", "impression", t + 200, "c"), ev("u2", "like", t + 201, "c"),  # unknown before the cut: no query
        ev("u3", "impression", t + 2, "c"), ev("u3", "view", t + 150, "b"),  # a plain view is no label
    ]
    cut = fusion.cut_at_time(events, {"a", "b", "c"}, at=t + 50)
    assert cut.kind == "time" and cut.now == t + 50
    assert cut.positives == {"u1": {"b"}}
    assert cut.prefix_items == {"u1": {"a"}}
    assert all(e.timestamp < t + 50 for e in cut.kept) and len(cut.kept) == 3


def _synthetic_groups(n_users: int, seed: int) -> fusion.Groups:
    """Candidates whose chance of being chosen needs two sources together: an item-to-item rank near the top AND
    recent popularity; either alone orders them worse than both."""
    rng = np.random.default_rng(seed)
    names = fusion.FEATURE_NAMES
    rank, pop = names.index("rank:item2item"), names.index("pop_7d")
    parts = []
    for u in range(n_users):
        n = 60
        F = np.full((n, len(names)), np.nan, dtype=np.float32)
        F[:, rank] = np.log1p(rng.permutation(n))
        F[:, pop] = rng.exponential(1.0, n)
        logit = 2.0 * F[:, pop] - 1.5 * F[:, rank] + 1.0
        labels = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
        if not labels.any():
            labels[int(np.argmax(logit))] = 1.0
        # the value model's score: the source rank alone (what orders the page before fusion)
        value = -F[:, rank].astype(np.float64)
        parts.append(fusion.Groups(F, labels, value, value, [n], [f"user{u}"]))
    return fusion.Groups.concat(parts)


def test_fusion_beats_each_single_source_on_a_known_structure():
    groups = _synthetic_groups(400, seed=1)
    # the fusion score alone orders the page: what it learned is judged by itself
    config = RecommenderConfig(fusion_trees=60, fusion_min_leaf=20, fusion_value_weight=0.0)
    model, summary = fusion.train_and_judge(groups, None, config, seed=3)
    assert model is not None and summary["promote"]
    hold = [fusion.held_out(u, config.fusion_holdout_fraction) for u in groups.users]
    test = groups.take(hold)
    fused = fusion.mean_ndcg(model.score(test.F), test.labels, test.sizes)
    for column in ("rank:item2item", "pop_7d"):
        j = fusion.FEATURE_NAMES.index(column)
        single = test.F[:, j] * (-1.0 if column.startswith("rank:") else 1.0)
        assert fused > fusion.mean_ndcg(single, test.labels, test.sizes) + 0.05
    assert summary["ndcg@10"] == pytest.approx(fused)


def test_the_promotion_check_judges_the_served_sum_of_fusion_and_value():
    groups = _synthetic_groups(400, seed=1)
    hold = [fusion.held_out(u, 0.2) for u in groups.users]
    test = groups.take(hold)
    value_only = fusion.mean_ndcg(test.value, test.labels, test.sizes)
    # a value weight so large that the served sum is the value model's ordering: nothing better to promote
    drowned = RecommenderConfig(fusion_trees=60, fusion_min_leaf=20, fusion_value_weight=1e6)
    model, summary = fusion.train_and_judge(groups, None, drowned, seed=3)
    assert summary["ndcg@10"] == pytest.approx(value_only) and not summary["promote"]
    # on the log-odds scale, weight 1: the sum is judged, and it beats the value model's ordering
    balanced = RecommenderConfig(fusion_trees=60, fusion_min_leaf=20, fusion_score="log_odds")
    model, summary = fusion.train_and_judge(groups, None, balanced, seed=3)
    served = fusion.served_scores(model, test.F, test.value, balanced)
    assert np.allclose(served, model.log_odds(test.F) + test.value)
    assert summary["ndcg@10"] == pytest.approx(fusion.mean_ndcg(served, test.labels, test.sizes))
    assert summary["promote"] and summary["ndcg@10"] > value_only + 0.02


def test_promotion_refuses_a_worse_candidate_and_rollback_restores():
    groups = _synthetic_groups(300, seed=2)
    config = RecommenderConfig(fusion_trees=60, fusion_min_leaf=20)
    good, _ = fusion.train_and_judge(groups, None, config, seed=3)
    registry = fusion.FusionRegistry()
    registry.add(good, promote=True, now=1.0, metrics={})
    # A weak candidate (few trees, trained on a sliver) against the active model: refused.
    weak_config = RecommenderConfig(fusion_trees=1, fusion_leaves=2, fusion_min_leaf=20)
    weak, summary = fusion.train_and_judge(groups, registry.active, weak_config, seed=3)
    assert summary["baseline"] == "active fusion model"
    assert not summary["promote"] and summary["ndcg@10"] < summary["baseline_ndcg@10"]
    record = registry.add(weak, promote=summary["promote"], now=2.0, metrics=summary)
    assert record.status == "rejected" and registry.active is good and registry.active_version == 1
    # Promote it by hand, then roll back: the good one serves again; None goes back to the value model.
    registry.rollback(2)
    assert registry.active is weak and [r["status"] for r in registry.history()] == ["retired", "active"]
    # Only the active model holds native code (a snapshot's load recompiles one forest, not every version).
    assert weak.compiled is not None and good.compiled is None
    registry.rollback(1)
    assert registry.active is good and good.compiled is not None and weak.compiled is None
    registry.rollback(None)
    assert registry.active is None and good.compiled is None
    with pytest.raises(KeyError):
        registry.rollback(9)


def test_item_activity_windows_and_popularity_where_the_user_was_last_active():
    weights = RecommenderConfig().event_weights
    events = [ev("u1", "like", NOW - 10 * DAY, "a"), ev("u2", "like", NOW - 10 * DAY, "a"),
              ev("u3", "like", NOW - 1 * DAY, "b"), ev("u4", "skip", NOW - 1 * DAY, "c")]
    activity = fusion.item_activity(events, {"a": 0, "b": 1, "c": 2}, {"a": 20.0, "b": 20.0, "c": 20.0}, weights,
                                    set(), NOW, 3)
    recent = activity.recent(np.array([0, 1, 2]), NOW)
    assert recent[2].sum() == 0  # a skip is no positive engagement
    assert recent[1, 0] == pytest.approx(0.5)  # one like a day ago, half-life one day
    assert recent[0, 1] == pytest.approx(2 * 0.5 ** (10 / 7))
    # Where a user was last active 9 days ago, only a's likes (10 days ago) count, decayed by one day.
    local = activity.local(np.array([0, 1]), NOW - 9 * DAY)
    assert local[1].sum() == 0 and local[0, 0] == pytest.approx(2 * 0.5 ** (1 / 7))


def _movie_log(n_users: int, seed: int) -> tuple[list, list]:
    """A small log where each user consumes popular-at-the-time items of their favourite topic."""
    rng = np.random.default_rng(seed)
    items = make_items(per_topic=25)
    by_topic: dict[str, list] = {}
    for item in items:
        by_topic.setdefault(item.topic, []).append(item)
    events = []
    for u in range(n_users):
        topic = list(by_topic)[u % len(by_topic)]
        start = NOW - 20 * DAY + rng.uniform(0, 15) * DAY
        pool = by_topic[topic]
        order = rng.permutation(len(pool))[:12]
        for n, index in enumerate(order):
            x = Interaction(f"u{u}", pool[index].item_id, start + n * 300.0, strength=1.0, watch_ratio=1.0,
                            liked=bool(rng.random() < 0.7))
            events.extend(to_events(x, pool[index].duration, pool[index].creator_id))
    return items, events


def test_the_job_trains_promotes_and_the_feed_is_ordered_by_the_fusion_model():
    items, events = _movie_log(60, seed=4)
    config = RecommenderConfig(fusion_trees=20, fusion_min_leaf=5, fusion_promotion_min_gain=-1.0,
                               fusion_holdout_fraction=0.3)
    rec = Recommender(config=config, clock=lambda: NOW)
    rec.upsert_items(items)
    rec.record_events(events)
    for name in ("video_stats", "trends", "item_neighbors", "long_term_interests", "item_activity"):
        rec.run_job(name, NOW)
    summary = rec.run_job("candidate_fusion", NOW)
    assert summary["promote"] and summary["version"] == 1 and summary["active_version"] == 1
    assert summary["compiled"], "the promoted forest serves as native code"
    assert summary["train_users"] > 0 and summary["holdout_users"] > 0 and summary["positives"] > 0
    page = rec.recommend("u3", k=6)
    assert len(page) == 6
    assert rec.inspect_user("u3")["last_recommendation"]["fusion_version"] == 1
    # The log did not grow: the next run skips retraining.
    assert "skipped" in rec.run_job("candidate_fusion", NOW)
