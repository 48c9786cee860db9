"""End-to-end: a fresh user's feed adapts within a handful of swipes and respects every rule."""

from recommender import FeedContext

from .conftest import NOW, ev, topic_of


def _share(page, topic):
    return sum(topic_of(r.item_id) == topic for r in page) / len(page)


def test_feed_shifts_toward_liked_topic_and_keeps_the_rules(rec, clock):
    user = "newbie"
    first = rec.recommend(user, k=10, context=FeedContext(now=NOW, session_id="s1"))
    assert len(first) == 10
    baseline_cats = _share(first, "cats")

    # Like and fully watch several cat videos, skip the cooking ones, hide one car video, report another.
    t = NOW
    hidden, reported = "cars-3", "cars-4"
    for i in range(5):
        t += 30
        rec.record_event(ev(user, "view", t, f"cats-{i}", watch_duration=20.0))
        rec.record_event(ev(user, "complete_view", t, f"cats-{i}"))
        rec.record_event(ev(user, "like", t + 1, f"cats-{i}"))
        rec.record_event(ev(user, "skip", t + 2, f"cooking-{i}", watch_duration=1.0))
    rec.record_event(ev(user, "hide", t + 3, hidden))
    rec.record_event(ev(user, "report", t + 4, reported))

    pages = []
    for n in range(3):
        pages.append(rec.recommend(user, k=10, context=FeedContext(now=t + 10 + n, session_id="s1")))
    second = pages[0]
    assert _share(second, "cats") >= 0.4 > baseline_cats
    assert _share(second, "cooking") <= 0.1

    shown = [r for page in [first, *pages] for r in page]
    assert hidden not in {r.item_id for r in shown} and reported not in {r.item_id for r in shown}
    assert len({r.item_id for r in shown}) == len(shown)  # nothing served twice in the session
    for page in [first, *pages]:
        creators = [rec.inspect_item(r.item_id)["creator_id"] for r in page]
        assert all(a != b for a, b in zip(creators, creators[1:], strict=False))
        assert all(r.reasons and all(isinstance(x, str) and x for x in r.reasons) for r in page)
        assert [r.position for r in page] == list(range(len(page)))

    liked_reasons = [x for r in second for x in r.reasons if "‹a cats video›" in x]
    assert liked_reasons, "cat videos should say why, naming one: 'Because you liked ‹a cats video›'"


def test_declared_interests_seed_a_cold_feed(rec):
    rec.set_declared_interests("onboarded", ["music"])
    page = rec.recommend("onboarded", k=10, context=FeedContext(now=NOW))
    assert _share(page, "music") >= 0.3
    assert any("music" in reason for r in page for reason in r.reasons)


def test_cold_user_gets_heavy_exploration_with_propensities(rec):
    page = rec.recommend("stranger", k=10, context=FeedContext(now=NOW))
    explored = [r for r in page if r.propensity is not None]
    assert len(explored) == rec.config.cold_user_explore_slots
    assert all(0.0 < r.propensity <= 1.0 for r in explored)
    assert len({topic_of(r.item_id) for r in page}) >= 3  # popular and diverse


def test_feed_is_never_empty_even_when_everything_was_seen(rec, items):
    for i, item in enumerate(items):
        rec.record_event(ev("binger", "impression", NOW + i, item.item_id))
    page = rec.recommend("binger", k=5, context=FeedContext(now=NOW + 500))
    assert len(page) == 5
    trace = rec.inspect_user("binger")["last_recommendation"]
    assert any(step["step"] == "seen" for step in trace["fallbacks"])
