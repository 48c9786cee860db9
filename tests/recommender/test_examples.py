"""Training examples from impressions, labelled by what followed within the session (30-minute cut)."""

import numpy as np
import pytest

from recommender import FeedContext, Recommender, RecommenderConfig
from recommender.ranking.model import TASKS
from recommender.training.examples import label_log

from .conftest import NOW, ev, make_items

DURATIONS = {"a": 20.0, "b": 10.0, "c": 30.0}


def _card(user, at, item, position, source="ann/short_term", **info):
    return ev(user, "impression", at, item, info={"position": position, "source": source, **info})


def _log():
    return [
        # session 1 of u1: three cards served
        _card("u1", NOW, "a", 0, propensity=0.5, variant="B"),
        _card("u1", NOW, "b", 1, "popular"),
        _card("u1", NOW, "c", 2),
        ev("u1", "view", NOW + 5, "a", watch_duration=15.0),
        ev("u1", "like", NOW + 6, "a"),
        ev("u1", "view", NOW + 20, "b", watch_duration=10.0),
        ev("u1", "complete_view", NOW + 21, "b"),
        ev("u1", "skip", NOW + 22, "c", watch_duration=1.0),
        ev("u1", "share", NOW + 1000, "b"),  # 16 min later: same session
        # 40 minutes of silence: session 2 starts; its like on "a" must not label session 1's card
        ev("u1", "like", NOW + 1000 + 2400, "a"),
        _card("u1", NOW + 1000 + 2401, "c", 0, "item2item"),
        ev("u1", "hide", NOW + 1000 + 2410, "c"),
        # another user reaches "b" through a shared link: no impression, position -1
        ev("u2", "view", NOW + 50, "b", watch_duration=4.0),
        ev("u2", "follow", NOW + 51, "b"),
    ]


def _labels(example):
    return {task: float(v) for task, v in zip(TASKS, example.labels, strict=True) if v}


def test_examples_match_hand_computed_labels_sessions_and_positions():
    examples = label_log(_log(), DURATIONS)
    by_key = {(e.user_id, e.item_id, e.opened_at): e for e in examples}
    assert len(examples) == 6
    a = by_key[("u1", "a", NOW)]
    assert _labels(a) == {"watch": 0.75, "like": 1.0}  # 15 s of 20; the like 40 min later belongs elsewhere
    assert (a.position, a.source, a.propensity, a.variant, a.watch_seconds) == (0, "ann/short_term", 0.5, "B", 15.0)
    b = by_key[("u1", "b", NOW)]
    assert _labels(b) == {"watch": 1.0, "complete": 1.0, "share": 1.0}
    assert (b.position, b.source, b.watch_seconds) == (1, "popular", 10.0)
    c = by_key[("u1", "c", NOW)]
    assert _labels(c) == {"watch": pytest.approx(1 / 30), "skip": 1.0}
    assert c.session == a.session == ("u1", NOW)
    # session 2: the like on "a" opens a first-exposure example of its own, the new card on "c" another
    second_a = by_key[("u1", "a", NOW + 3400)]
    assert _labels(second_a) == {"like": 1.0} and second_a.position == -1 and second_a.source == ""
    second_c = by_key[("u1", "c", NOW + 3401)]
    assert _labels(second_c) == {"negative": 1.0}
    assert (second_c.position, second_c.source, second_c.session) == (0, "item2item", ("u1", NOW + 3400))
    shared = by_key[("u2", "b", NOW + 50)]
    assert _labels(shared) == {"watch": pytest.approx(0.4), "follow": 1.0} and shared.position == -1


def test_the_engine_builds_the_same_examples_as_the_log_builder():
    """One builder: the live engine's examples (with features at exposure time) carry the log's labels."""
    items = {i.item_id: i for i in make_items()}
    names = {"a": "cats-1", "b": "cats-2", "c": "music-3"}
    log = [ev(e.user_id, e.event_type, e.timestamp, names[e.item_id], watch_duration=e.watch_duration,
              info=e.info) for e in _log()]
    durations = {names[k]: items[names[k]].duration for k in names}
    expected = sorted((e.user_id, e.item_id, e.opened_at, e.position, tuple(e.labels))
                      for e in label_log(log, durations))
    rec = Recommender(RecommenderConfig())
    rec.upsert_items(list(items.values()))
    rec.record_events(log)
    buffer = rec._state.examples
    assert buffer.close_idle(NOW + 10_000) == 1 + 2  # u2's session (closed earlier: 3 of u1's) and u1's last
    got = sorted((e.user_id, e.item_id, e.opened_at, e.position, tuple(e.labels)) for e in buffer.finished)
    assert got == expected
    data = buffer.since(float("-inf"))
    assert data.X.shape == (6, len(rec._state.examples.finished[0].features)) and np.all(data.X[:, 0] == 1.0)
    assert len(set(data.sessions.tolist())) == 3


def test_served_cards_become_examples_with_their_positions(rec):
    page = rec.recommend("viewer", k=6, context=FeedContext(now=NOW))
    rec.record_events([_card("viewer", NOW + 1, r.item_id, r.position, r.source) for r in page])
    rec.record_event(ev("viewer", "like", NOW + 5, page[2].item_id))
    rec._state.examples.close_idle(NOW + 4000)
    examples = {e.item_id: e for e in rec._state.examples.finished}
    assert set(examples) == {r.item_id for r in page}
    assert examples[page[2].item_id].position == 2 and examples[page[2].item_id].labels[TASKS.index("like")] == 1
    assert sum(e.labels.sum() for e in examples.values()) == 1.0


def test_the_example_buffer_survives_pickling_field_for_field():
    """Snapshots store finished examples as columns; every field and both arrays come back as they were, the
    open sessions too, and a buffer of mixed feature widths (a feature change mid-window) still round-trips."""
    import dataclasses
    import pickle

    from recommender.training.examples import Example, ExampleBuffer

    items = {i.item_id: i for i in make_items()}
    names = {"a": "cats-1", "b": "cats-2", "c": "music-3"}
    rec = Recommender(RecommenderConfig())
    rec.upsert_items(list(items.values()))
    rec.record_events([ev(e.user_id, e.event_type, e.timestamp, names[e.item_id], watch_duration=e.watch_duration,
                          info=e.info) for e in _log()])
    buffer = rec._state.examples
    assert len(buffer.finished) == 3 and buffer.labeler.n_open > 0  # some finished, some still open

    def fields(b: ExampleBuffer) -> list:
        return [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in dataclasses.asdict(e).items()}
                for e in b.finished]

    back = pickle.loads(pickle.dumps(buffer))
    assert fields(back) == fields(buffer) and back.finished.maxlen == buffer.finished.maxlen
    assert back.labeler.n_open == buffer.labeler.n_open and set(back.labeler.open) == set(buffer.labeler.open)
    assert buffer.close_idle(NOW + 10_000) == back.close_idle(NOW + 10_000)
    assert fields(back) == fields(buffer)

    buffer.finished.append(Example("u9", "cats-1", NOW, NOW, 10.0, features=np.ones(3, dtype=np.float32)))
    assert fields(pickle.loads(pickle.dumps(buffer))) == fields(buffer)
