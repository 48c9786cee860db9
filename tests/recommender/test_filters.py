import dataclasses

import pytest

from recommender import FeedContext, Item, Recommender, RecommenderConfig
from recommender.filters import FilterContext, first_failing

from .conftest import NOW, ev, make_items


def _reason(rec, user_id, item_id, exclude=frozenset(), now=NOW):
    state = rec._state
    ctx = FilterContext(state.user(user_id), state.catalog, state.config, now, exclude)
    return first_failing(ctx, state.catalog.row_of[item_id])


def test_each_filter_names_what_it_removes(rec):
    rec.upsert_item(dataclasses.replace(rec._state.catalog.get("cats-0"), available=False))
    rec.upsert_item(Item("mine", "me", None, text="my own clip"))
    rec.set_user_filters("me", blocked_creators=["cars-creator-1"], muted_words=["#Music", "spicy noodles"])
    rec.upsert_item(Item("noodles", "chef", None, text="Spicy noodles in 5 minutes"))
    rec.record_event(ev("me", "hide", NOW, "cats-2"))
    rec.record_event(ev("me", "hide", NOW, "cooking-3", info={"scope": "creator"}))
    rec.record_event(ev("me", "report", NOW, "cats-5"))
    rec.record_event(ev("me", "view", NOW, "cats-6", watch_duration=3))

    assert _reason(rec, "me", "cats-0") == "unavailable"
    assert _reason(rec, "me", "mine") == "own_video"
    assert _reason(rec, "me", "cars-1") == "blocked_creator"
    assert _reason(rec, "me", "cats-2") == "hidden"
    assert _reason(rec, "me", "cooking-9") == "hidden"  # same creator as cooking-3 (creators repeat every 6)
    assert _reason(rec, "me", "cats-5") == "reported"
    assert _reason(rec, "me", "music-1") == "muted_word"  # hashtag
    assert _reason(rec, "me", "noodles") == "muted_word"  # phrase in text
    assert _reason(rec, "me", "cats-7", exclude=frozenset({"cats-7"})) == "excluded_by_caller"
    assert _reason(rec, "me", "cats-6") == "seen"
    assert _reason(rec, "me", "cats-8") is None


def test_seen_window_is_configurable(clock):
    config = RecommenderConfig(seen_window_seconds=60.0)
    rec = Recommender(config, clock=clock)
    rec.upsert_items(make_items())
    rec.record_event(ev("u", "view", NOW, "cats-1", watch_duration=20))
    assert _reason(rec, "u", "cats-1", now=NOW + 30) == "seen"
    assert _reason(rec, "u", "cats-1", now=NOW + 120) is None


def test_served_items_are_not_repeated_within_a_session(rec):
    first = rec.recommend("u", k=10, context=FeedContext(now=NOW, session_id="a"))
    second = rec.recommend("u", k=10, context=FeedContext(now=NOW + 5, session_id="a"))
    assert not {r.item_id for r in first} & {r.item_id for r in second}
    assert _reason(rec, "u", first[0].item_id, now=NOW + 6) == "served_this_session"
    # A new session may show them again (nothing was actually watched).
    third = rec.recommend("u", k=1, context=FeedContext(now=NOW + 10, session_id="b"))
    assert _reason(rec, "u", third[0].item_id, now=NOW + 11) == "served_this_session"
    not_again = [r.item_id for r in first if r.item_id != third[0].item_id]
    assert len(not_again) >= 9
    assert [_reason(rec, "u", item, now=NOW + 11) for item in not_again] == [None] * len(not_again)


def test_recommend_respects_filters_end_to_end(rec):
    rec.set_user_filters("u", blocked_creators=[f"cats-creator-{i}" for i in range(6)], muted_words=["cooking"])
    exclude = frozenset(f"music-{i}" for i in range(10))
    seen = set()
    for n in range(4):
        page = rec.recommend("u", k=8, context=FeedContext(now=NOW + n, exclude=exclude))
        seen |= {r.item_id for r in page}
    assert seen and not any(i.startswith(("cats", "cooking")) for i in seen)
    assert not seen & exclude


@pytest.mark.parametrize("kind", ["hide", "report"])
def test_negative_feedback_removes_item_immediately(rec, kind):
    page = rec.recommend("u", k=5, context=FeedContext(now=NOW, session_id="x"))
    target = page[0].item_id
    rec.record_event(ev("u", kind, NOW + 1, target))
    later = rec.recommend("u", k=50, context=FeedContext(now=NOW + 4000, session_id="y"))
    assert target not in {r.item_id for r in later}
