"""Every served reason is true: checked against the pipeline's trace and the history the test itself fed."""

from __future__ import annotations

import numpy as np

from recommender import FeedContext
from recommender.features.items import C as COUNTER
from recommender.reasons import POPULAR_MIN_VIEWS, POPULAR_TOP_SHARE, fill, title_of
from tests.recommender.conftest import NOW, ev


class History:
    """What the test told the recommender, to check the reasons against (not the recommender's own state)."""

    def __init__(self, rec, user: str) -> None:  # noqa: ANN001
        self.rec, self.user = rec, user
        self.liked: set[str] = set()
        self.enjoyed: set[str] = set()
        self.followed: set[str] = set()
        self.picked: set[str] = set()

    def like(self, item: str, at: float) -> None:
        self.rec.record_event(ev(self.user, "like", at, item))
        self.liked.add(item)
        self.enjoyed.add(item)

    def watch(self, item: str, at: float) -> None:
        self.rec.record_event(ev(self.user, "view", at, item, watch_duration=20.0))
        self.rec.record_event(ev(self.user, "complete_view", at, item))
        self.enjoyed.add(item)

    def follow(self, creator: str, at: float) -> None:
        self.rec.record_event(ev(self.user, "follow", at, None, creator_id=creator))
        self.followed.add(creator)

    def pick(self, *topics: str) -> None:
        self.rec.set_declared_interests(self.user, topics)
        self.picked |= set(topics)


def served(rec, user: str, at: float, pages: int = 3, k: int = 10) -> list[tuple[object, dict]]:  # noqa: ANN001
    """(recommendation, its trace entry) for a few pages."""
    out = []
    for n in range(pages):
        page = rec.recommend(user, k=k, context=FeedContext(now=at + n, session_id="s1"))
        final = rec.inspect_user(user)["last_recommendation"]["final"]
        assert [f["item_id"] for f in final] == [r.item_id for r in page]
        out += list(zip(page, final, strict=True))
    return out


def check_true(rec, history: History, pairs) -> None:  # noqa: ANN001
    state = rec._state
    catalog = state.catalog
    n = len(catalog)
    views = catalog.counts[:n, COUNTER["views"]][catalog.available[:n]]
    floor = max(POPULAR_MIN_VIEWS, float(np.quantile(views, 1 - POPULAR_TOP_SHARE)))
    for rec_, entry in pairs:
        item = catalog.get(rec_.item_id)
        evidence = entry["evidence"]
        assert [e["text"] for e in evidence] == rec_.reasons and rec_.reasons
        first = evidence[0]
        # The first reason explains the card's real source (or the slot it was placed in).
        assert first["source"] in (rec_.source, entry["placed"], *entry["also_from"]) or \
            (entry["placed"] == "explore" and first["kind"] == "explore"), (rec_.source, entry)
        for e in evidence:
            kind, text = e["kind"], e["text"]
            if kind in ("liked",):
                assert e["item_id"] in history.liked, e
                assert e["item_id"] != rec_.item_id
            if kind == "watched":
                assert e["item_id"] in history.enjoyed, e
            if kind == "cf":
                assert "item_id" not in e or e["item_id"] in history.enjoyed, e
                assert e["source"] == "item2item"
            if kind == "picked":
                assert e["tag"] in history.picked and (e["tag"] in item.hashtags or e["tag"] == item.category)
            if kind == "follow":
                assert e["creator_id"] == item.creator_id and item.creator_id in history.followed
            if kind == "trending":
                trend = float(catalog.trend[catalog.row_of[item.item_id]])
                assert trend > 0 and abs(e["growth"] - 2 ** (3 * trend)) < 0.01
            if kind == "popular":
                assert e["views"] >= floor and e["views"] >= POPULAR_MIN_VIEWS
            if "Popular right now" in text:
                assert kind == "popular"
            if "you liked" in text.lower():
                assert kind == "liked" or (kind == "cf" and e.get("liked")), e
            if kind in ("liked", "watched", "cf") and "item_id" in e:
                assert f"‹{title_of(catalog.get(e['item_id']))}›" in text, e  # it names the video it refers to


def test_onboarding_picks_say_you_picked_never_you_liked(rec):
    history = History(rec, "picker")
    history.pick("cats")
    pairs = served(rec, "picker", NOW)
    texts = [t for r, _ in pairs for t in r.reasons]
    assert not any("liked" in t.lower() for t in texts), texts  # nothing was liked
    assert "You picked #cats" in texts
    check_true(rec, history, pairs)


def test_liked_and_watched_seeds_are_named_and_real(rec):
    history = History(rec, "fan")
    t = NOW
    for i in range(4):
        t += 30
        history.watch(f"cars-{i}", t)
        history.like(f"cats-{i}", t + 1)
    history.follow("music-creator-1", t + 2)
    pairs = served(rec, "fan", t + 10)
    check_true(rec, history, pairs)
    texts = [t for r, _ in pairs for t in r.reasons]
    assert "Because you liked ‹a cats video›" in texts, texts
    assert any("‹a cars video›" in x for x in texts), texts
    generic = [x for r, _ in pairs for x in r.reasons[:1] if x == "Similar to what you're watching now"]
    assert len(generic) <= len(pairs) // 10, generic  # the seed video is named, not "what you're watching"
    followed = [r for r, _ in pairs if rec.inspect_item(r.item_id)["creator_id"] == "music-creator-1"]
    for r in followed:
        assert any(fill(x, "mia") in ("New from @mia, who you follow", "From @mia, who you follow")
                   for x in r.reasons), r.reasons


def test_item_to_item_names_the_anchor(rec):
    for u in range(10):
        rec.record_event(ev(f"co{u}", "like", NOW + u, "cats-1"))
        rec.record_event(ev(f"co{u}", "like", NOW + u, "music-7"))
    rec.run_job("item_neighbors", NOW + 20)
    history = History(rec, "u")
    history.like("cats-1", NOW + 30)
    pairs = served(rec, "u", NOW + 31, pages=2)
    check_true(rec, history, pairs)
    [music] = [r for r, _ in pairs if r.item_id == "music-7"]
    assert music.reasons[0] == "People who liked ‹a cats video› also liked this"


def test_popular_only_above_a_real_threshold_and_trending_says_by_how_much(rec):
    # music-3: 60 viewers (popular, and trending); cats-2: 5 viewers.
    for u in range(60):
        rec.record_event(ev(f"w{u}", "view", NOW - 200 + u, "music-3", watch_duration=20.0))
        rec.record_event(ev(f"w{u}", "like", NOW - 200 + u, "music-3"))
    for u in range(5):
        rec.record_event(ev(f"x{u}", "view", NOW - 100 + u, "cats-2", watch_duration=20.0))
    rec.run_job("trends", NOW)
    history = History(rec, "new")
    pairs = served(rec, "new", NOW + 1, pages=4)
    check_true(rec, history, pairs)
    texts = {r.item_id: r.reasons for r, _ in pairs}
    assert not any("Popular right now" in x for x in texts.get("cats-2", []))
    assert not any("Popular right now" in x for i, rs in texts.items() if i != "music-3" for x in rs)
    assert "music-3" in texts
    assert any(x.startswith("Trending in #music: ") and "× more engagement than usual" in x
               for x in texts["music-3"]), texts["music-3"]


def test_the_check_fails_on_a_false_reason(rec):
    """The checker itself can fail: a 'liked' reason for something never liked is caught."""
    history = History(rec, "fan")
    history.like("cats-0", NOW)
    pairs = served(rec, "fan", NOW + 5, pages=1)
    r, entry = next((r, e) for r, e in pairs if any(x["kind"] == "liked" for x in e["evidence"]))
    history.liked.clear()  # pretend it was never liked
    try:
        check_true(rec, history, [(r, entry)])
    except AssertionError:
        return
    raise AssertionError("a false 'you liked' reason passed the check")
