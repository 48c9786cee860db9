from recommender import Event, FeedContext, Recommendation

from .conftest import NOW, ev


def test_duplicate_events_are_ignored(rec):
    event = Event("same-id", "u", "like", NOW, "cats-1")
    assert rec.record_event(event) is True
    assert rec.record_event(event) is False
    assert rec.record_events([event, ev("u", "like", NOW + 1, "cats-2")]) == 1
    assert rec.inspect_item("cats-1")["stats"]["likes"] == 1


def test_unlike_undoes_a_like(rec):
    rec.record_event(ev("u", "like", NOW, "cats-1"))
    rec.record_event(ev("u", "unlike", NOW + 1, "cats-1"))
    assert rec.inspect_item("cats-1")["stats"]["likes"] == 0
    assert rec.inspect_user("u")["interests"]["long_term"]["topics"] == []


def test_removed_and_unavailable_items_are_never_recommended(rec):
    first = rec.recommend("u", k=10, context=FeedContext(now=NOW))
    gone = first[0].item_id
    assert rec.remove_item(gone) and not rec.remove_item(gone)
    assert rec.inspect_item(gone) is None
    later = [r.item_id for n in range(10) for r in rec.recommend(f"x{n}", k=10, context=FeedContext(now=NOW))]
    assert gone not in later


def test_recommendations_carry_everything_the_app_needs(rec):
    page = rec.recommend("u", k=4, context=FeedContext(now=NOW, device="desktop"))
    assert all(isinstance(r, Recommendation) for r in page)
    record = page[0].to_dict()
    assert set(record) == {"item_id", "score", "source", "reasons", "probabilities", "propensity", "position"}


def test_inspect_user_returns_the_last_trace(rec):
    assert rec.inspect_user("nobody") == {"user_id": "nobody", "known": False, "last_recommendation": None}
    rec.record_event(ev("u", "like", NOW, "cats-1"))
    page = rec.recommend("u", k=6, context=FeedContext(now=NOW + 1))
    trace = rec.inspect_user("u")["last_recommendation"]
    assert [f["item_id"] for f in trace["final"]] == [r.item_id for r in page]
    assert trace["candidates_by_source"]["ann/short_term"]["count"] > 0
    assert {"probabilities", "value", "score", "source"} <= set(trace["scored"][0])
    assert len(trace["reranking"]) >= len(page)
    assert trace["ranker_version"] == 0


def test_same_inputs_same_feed(clock, items):
    from recommender import Recommender

    pages = []
    for _ in range(2):
        rec = Recommender(clock=clock)
        rec.upsert_items(items)
        rec.record_event(Event("e1", "u", "like", NOW, "cars-2"))
        pages.append([(r.item_id, r.propensity) for r in rec.recommend("u", k=10, context=FeedContext(now=NOW + 5))])
    assert pages[0] == pages[1]



def test_forget_user_drops_the_profile_and_anonymises_events(rec, items):
    from recommender import Event, FeedContext

    rec.record_event(Event("forget-1", "leaver", "like", 1_000.0, item_id=items[0].item_id))
    rec.recommend("leaver", k=3, context=FeedContext(now=1_001.0))
    assert rec.inspect_user("leaver")["known"]
    assert rec.forget_user("leaver") == 1
    assert not rec.inspect_user("leaver")["known"]
    assert rec.forget_user("leaver") == 0  # nothing left to rewrite



def test_a_feed_runs_no_cyclic_collection_and_leaves_the_collector_as_it_was(rec):
    """A feed's containers die with it by reference counting: with a young-generation threshold far below what
    one feed allocates, at most the collections of the call's own set-up and return run (with the collector on
    through the feed, 11 ran here), and the collector's on/off state is kept."""
    import gc

    rec.record_event(ev("u", "like", NOW, "cats-1"))
    started: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            started.append(info["generation"])

    threshold, was_enabled = gc.get_threshold(), gc.isenabled()
    gc.callbacks.append(count)
    try:
        gc.enable()
        gc.set_threshold(50, 1_000_000, 1_000_000)  # young collections only: cheap however many run
        rec.recommend("u", k=6, context=FeedContext(now=NOW + 1))
        assert len(started) <= 2 and gc.isenabled()
        gc.disable()
        rec.recommend("u", k=6, context=FeedContext(now=NOW + 2))
        assert not gc.isenabled()
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(count)
        if was_enabled:
            gc.enable()
