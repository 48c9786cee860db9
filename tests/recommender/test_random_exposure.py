"""The random-exposure slice: served at its configured share, uniformly from the eligible pool, with its propensity."""

from __future__ import annotations

from collections import Counter

from scipy.stats import binomtest, chisquare

from recommender import FeedContext, Recommender, RecommenderConfig
from tests.recommender.conftest import NOW, Clock, make_items


def _serve(share: float, users: int = 300, k: int = 6) -> list:
    rec = Recommender(RecommenderConfig(random_exposure_share=share), clock=Clock())
    items = make_items(per_topic=10)
    rec.upsert_items(items)
    served = []
    for u in range(users):
        served += rec.recommend(f"viewer{u}", k=k, context=FeedContext(now=NOW + u))
    return served, len(items)


def test_random_slots_come_at_the_configured_share_uniformly_with_their_propensity():
    share = 0.1
    served, n_items = _serve(share)
    random = [r for r in served if r.source == "random"]
    # the share of impressions is what was configured (two-sided exact binomial test)
    assert binomtest(len(random), len(served), share).pvalue > 0.001, (len(random), len(served))
    # a new viewer may be shown anything: the pool is the whole catalogue, so P(item | random slot) = 1/n
    assert random and all(r.propensity == 1.0 / n_items for r in random)
    counts = Counter(r.item_id for r in random)
    observed = [counts.get(f"{t}-{i}", 0) for t in ("cats", "cooking", "cars", "music") for i in range(10)]
    assert chisquare(observed).pvalue > 0.001  # uniform over the pool, not the ranker's favourites
    positions = Counter(r.position for r in random)
    assert len(positions) == 6  # any position of the page may be a random slot


def test_the_pool_is_what_the_filters_allow():
    rec = Recommender(RecommenderConfig(random_exposure_share=1.0), clock=Clock())
    items = make_items(per_topic=3)
    rec.upsert_items(items)
    first = rec.recommend("viewer", k=6, context=FeedContext(now=NOW, exclude=frozenset({items[0].item_id})))
    assert all(r.source == "random" for r in first) and len(first) == 6
    assert items[0].item_id not in {r.item_id for r in first}
    assert {r.propensity for r in first} == {1.0 / (len(items) - 1)}
    second = rec.recommend("viewer", k=6, context=FeedContext(now=NOW + 1))
    assert not {r.item_id for r in second} & {r.item_id for r in first}  # served this session: not eligible
    assert {r.propensity for r in second} == {1.0 / (len(items) - 6)}


def test_share_zero_turns_the_slice_off():
    served, _ = _serve(0.0, users=50)
    assert not [r for r in served if r.source == "random"]
