import numpy as np

from recommender import FeedContext, Item
from recommender.candidates import CandidateRequest, gather
from recommender.candidates.ann import centroid_quotas
from recommender.ranking.features import interest_queries
from recommender.reasons import CREATOR

from .conftest import NOW, ev, topic_of


def _gather(rec, user_id, now=NOW):
    state = rec._state
    user = state.user(user_id)
    queries = interest_queries(user, state.catalog, now, state.config.declared_interest_weight)
    request = CandidateRequest(state, state.config, user, queries, now, set(), np.random.default_rng(0))
    candidates, by_source = gather(request, state.config.candidate_quotas)
    return candidates, by_source


def test_two_tastes_both_get_nearest_neighbour_candidates(rec):
    for i in range(3):  # strong cats taste, weaker cars taste
        rec.record_event(ev("u", "like", NOW + i, f"cats-{i}"))
        rec.record_event(ev("u", "like", NOW + i, f"cars-{i}"))
    rec.record_event(ev("u", "like", NOW + 5, "cats-5"))
    rec.record_event(ev("u", "share", NOW + 5, "cats-6"))
    _, by_source = _gather(rec, "u", NOW + 10)
    short_topics = [topic_of(i) for i in by_source["ann/short_term"][:40]]
    assert short_topics.count("cats") >= 15 and short_topics.count("cars") >= 15


def test_centroid_quotas_give_each_centroid_a_floor():
    assert centroid_quotas(np.array([9.0, 1.0]), 100, 15) == [90, 15]
    assert centroid_quotas(np.array([]), 100, 15) == []


def test_item_to_item_uses_co_engagement(rec):
    # Ten users like both cats-1 and music-7: they become neighbours although far apart in content space.
    for u in range(10):
        rec.record_event(ev(f"fan{u}", "like", NOW + u, "cats-1"))
        rec.record_event(ev(f"fan{u}", "like", NOW + u, "music-7"))
    rec.run_job("item_neighbors", NOW + 20)
    rec.record_event(ev("u", "like", NOW + 30, "cats-1"))
    _, by_source = _gather(rec, "u", NOW + 31)
    assert by_source["item2item"][0] == "music-7"


def test_following_source_lists_recent_uploads_of_followed_creators_newest_first(rec):
    rec.upsert_item(Item("new-a", "star", None, uploaded_at=NOW - 100))
    rec.upsert_item(Item("new-b", "star", None, uploaded_at=NOW - 10))
    rec.upsert_item(Item("ancient", "star", None, uploaded_at=NOW - 400 * 86400))
    rec.set_follows("u", ["star"])
    _, by_source = _gather(rec, "u")
    assert by_source["following"] == ["new-b", "new-a"]
    page = rec.recommend("u", k=10, context=FeedContext(now=NOW))
    followed = [r for r in page if r.source == "following"]
    assert followed and all(f"New from {CREATOR}, who you follow" in r.reasons for r in followed)


def test_fresh_pool_holds_new_uploads_until_their_cohort_is_used(rec):
    rec.upsert_item(Item("brand-new", "newbie-creator", None, uploaded_at=NOW - 60))
    _, by_source = _gather(rec, "u")
    assert "brand-new" in by_source["fresh"]
    for i in range(rec.config.cohort_size):
        rec.record_event(ev(f"viewer{i}", "impression", NOW + i, "brand-new"))
    _, by_source = _gather(rec, "u", NOW + 100)
    assert "brand-new" not in by_source["fresh"]


def test_trending_source_follows_the_trends_job(rec):
    for u in range(12):
        rec.record_event(ev(f"w{u}", "like", NOW - 100 + u, "music-3"))
        rec.record_event(ev(f"w{u}", "share", NOW - 100 + u, "music-3"))
    summary = rec.run_job("trends", NOW)
    assert summary["trending"] >= 1
    _, by_source = _gather(rec, "u")
    assert by_source["trending"][0] == "music-3"


def test_explore_avoids_the_users_known_topics(rec):
    for i in range(4):
        rec.record_event(ev("u", "like", NOW + i, f"cats-{i}"))
    _, by_source = _gather(rec, "u", NOW + 10)
    assert by_source["explore"] and not any(topic_of(i) == "cats" for i in by_source["explore"])


def test_items_without_vectors_are_still_served(rec):
    rec.upsert_item(Item("novec", "solo", None, uploaded_at=NOW - 10))
    candidates, by_source = _gather(rec, "fresh-user")
    assert "novec" in {c.item_id for c in candidates}
    assert "ann/short_term" not in by_source  # no profile yet: no vector queries


def test_every_candidate_has_a_named_source(rec):
    rec.record_event(ev("u", "like", NOW, "cats-1"))
    candidates, _ = _gather(rec, "u", NOW + 1)
    names = {"ann/short_term", "ann/long_term", "item2item", "trending", "fresh", "following", "popular", "explore"}
    assert candidates and {c.source for c in candidates} <= names


def test_in_sorted_is_isin():
    from recommender.membership import SEARCH_BELOW, in_sorted

    rng = np.random.default_rng(3)
    for n, m in [(0, 0), (0, 5), (7, 0), (1, 1), (300, 50), (2000, 3), (SEARCH_BELOW + 10, 40)] + [
            (int(rng.integers(1, 3000)), int(rng.integers(0, 400))) for _ in range(200)]:
        values = rng.integers(-1, 5000, size=n)
        members = np.sort(rng.integers(0, 5000, size=m))  # duplicates too
        assert np.array_equal(in_sorted(values, members), np.isin(values, members))
