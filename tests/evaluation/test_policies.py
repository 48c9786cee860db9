from __future__ import annotations

import numpy as np
import pytest

from recommender.evaluation.data import Interaction, ItemInfo
from recommender.evaluation.policies import MatrixPolicy, Policy, make_baseline, signal_weight

ITEMS = {i: ItemInfo(i, f"text {i}", topic="t") for i in "abcdef"}


def _like(user: str, item: str, t: float = 0.0) -> Interaction:
    return Interaction(user, item, t, 1.0, 1.0, liked=True)


def _skip(user: str, item: str, t: float = 0.0) -> Interaction:
    return Interaction(user, item, t, -0.5, 0.1, skipped=True)


# users who like a also like b; c is popular on its own
TRAIN = [
    _like("u1", "a"), _like("u1", "b"),
    _like("u2", "a"), _like("u2", "b"),
    _like("u3", "c"), _like("u4", "c"), _like("u5", "c"),
    _like("u6", "a"), _skip("u6", "d"),
]


def test_signal_weights():
    assert signal_weight(_like("u", "a"), "positive") == 1.0
    assert signal_weight(_skip("u", "a"), "positive") == 0.0
    assert signal_weight(_skip("u", "a"), "all") == 1.0
    assert signal_weight(_skip("u", "a"), "graded") == 0.0
    with pytest.raises(ValueError):
        signal_weight(_like("u", "a"), "nope")


BASELINES = ["random", "popularity", "recent_popularity", "itemknn", "ease", "rp3beta", "als", "bpr"]


@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_respects_exclusions_and_k(name):
    extra = {"iterations": 3} if name in {"als", "bpr"} else {}
    policy = make_baseline(name, **extra)
    assert isinstance(policy, Policy)
    policy.fit(TRAIN, ITEMS, now=10.0)
    recs = policy.recommend("u6", 3, exclude=frozenset({"a", "d"}))
    assert len(recs) == 3 and not {"a", "d"} & set(recs)
    assert len(set(recs)) == 3
    assert len(policy.recommend("u6", 10, exclude=frozenset({"a"}))) == 5
    policy.observe(_like("u6", "e", 11.0))  # must not fail, for known and unknown users
    policy.observe(_like("new", "e", 12.0))
    assert len(policy.recommend("new", 2, frozenset({"e"}))) == 2


def test_popularity_ranks_by_positive_engagement_and_updates_live():
    pop = make_baseline("popularity", signal="positive")
    pop.fit(TRAIN, ITEMS, now=0.0)
    assert pop.recommend("x", 2) == ["a", "c"]  # a: 3 likes, c: 3 likes (tie -> id order)
    for u in ("p", "q", "r", "s"):
        pop.observe(_like(u, "f", 1.0))
    assert pop.recommend("x", 1) == ["f"]


def test_item_neighbourhood_methods_follow_co_engagement():
    for name, params in (("itemknn", {"signal": "positive", "shrink": 0.0}), ("ease", {"lam": 1.0})):
        policy = make_baseline(name, **params)
        policy.fit(TRAIN, ITEMS, now=0.0)
        assert policy.recommend("u6", 1, exclude=frozenset({"a", "d"})) == ["b"], name


@pytest.mark.parametrize("name", [n for n in BASELINES if n != "random"])
def test_a_user_without_signal_gets_popularity_and_ties_break_by_popularity(name):
    extra = {"iterations": 3} if name in {"als", "bpr"} else {}
    policy = make_baseline(name, signal="positive", **extra)
    policy.fit(TRAIN, ITEMS, now=10.0)
    # a brand-new user, and a user whose only event (a skip) carries no positive signal: popularity, not item ids
    assert policy.recommend("newcomer", 2) == ["a", "c"]  # a and c: three likes each; a's graded count wins ties
    assert policy.recommend("skipper", 1, frozenset({"a"})) == ["c"]
    policy.observe(_skip("skipper", "e", 11.0))
    assert policy.recommend("skipper", 1, frozenset({"a"})) == ["c"]
    # u3 liked only c: item-neighbourhood scores are 0 for every other item; ties fall to popularity, not "a"<"b"
    policy.observe(_like("p1", "b", 12.0))
    policy.observe(_like("p2", "b", 12.0))
    if name in {"itemknn", "ease", "rp3beta"}:
        assert policy.recommend("u3", 1, frozenset({"c"})) == ["b"], name


def test_the_fallback_serves_popularity_whatever_the_model_says_for_a_user_without_signal():
    class Contrarian(MatrixPolicy):
        """Scores every item by its id, backwards: a model that disagrees with popularity everywhere."""

        def scores(self, user):
            return -np.arange(len(self.item_ids), dtype=float)

    policy = Contrarian(signal="positive")
    policy.fit(TRAIN, ITEMS, now=0.0)
    assert policy.recommend("u6", 2, frozenset({"a"})) == ["b", "c"]  # with signal: the model's order
    assert policy.recommend("newcomer", 2) == ["a", "c"]  # without: the most engaged items


def test_recent_popularity_prefers_recent_events():
    train = [_like("u1", "a", 0.0), _like("u2", "a", 0.0), _like("u3", "b", 86_400.0 * 10)]
    policy = make_baseline("recent_popularity", signal="positive", half_life_days=1)
    policy.fit(train, ITEMS, now=86_400.0 * 10)
    assert policy.recommend("x", 1) == ["b"]


def test_unknown_baseline():
    with pytest.raises(ValueError):
        make_baseline("nope")
