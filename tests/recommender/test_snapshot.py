"""The state snapshot: a recommender restored from one and fed the rest of the history serves what one fed the
whole history serves; a snapshot for another config, or altered, is refused."""

from __future__ import annotations

import random

import pytest

from recommender import FeedContext, Recommender, RecommenderConfig
from recommender.snapshot import SnapshotError, load_snapshot, read_header, save_snapshot
from tests.recommender.conftest import NOW, Clock, ev, make_items


def _history(items, n: int = 300) -> list:  # noqa: ANN001
    rng = random.Random(1)
    return [ev(f"user{i % 5}", rng.choice(["view", "like", "skip", "impression"]), NOW - 3600 + i * 7,
               rng.choice(items).item_id, watch_duration=8.0) for i in range(n)]


def test_restored_state_plus_the_rest_serves_the_same_feed(tmp_path):
    items, clock = make_items(), Clock(NOW)
    events = _history(items)
    whole = Recommender(clock=clock)
    whole.upsert_items(items)
    whole.record_events(events, history_end=events[-1].timestamp)
    first = Recommender(clock=clock)
    first.upsert_items(items)
    first.record_events(events[:200], history_end=events[-1].timestamp)
    save_snapshot(first, tmp_path / "state", lambda: {"sequence": 200})
    assert read_header(tmp_path / "state")["meta"] == {"sequence": 200}
    restored, meta = load_snapshot(tmp_path / "state", clock=clock)
    assert meta == {"sequence": 200}
    assert restored.record_events(events[150:], history_end=events[-1].timestamp) == 100  # overlap ignored
    for user in ("user0", "user3"):
        expected = [(r.item_id, round(r.score, 9)) for r in whole.recommend(user, 10, FeedContext(session_id="s"))]
        got = [(r.item_id, round(r.score, 9)) for r in restored.recommend(user, 10, FeedContext(session_id="s"))]
        assert got == expected and expected


def test_other_config_or_altered_bytes_are_refused(tmp_path):
    rec = Recommender(clock=Clock(NOW))
    rec.upsert_items(make_items(per_topic=3))
    path = tmp_path / "state"
    save_snapshot(rec, path)
    with pytest.raises(SnapshotError, match="config"):
        load_snapshot(path, RecommenderConfig(max_events=123))
    raw = path.read_bytes()
    path.write_bytes(raw[:-5])
    with pytest.raises(SnapshotError, match="checksum"):
        load_snapshot(path)
    path.write_bytes(b"junk\n" + raw)
    with pytest.raises(SnapshotError, match="not a recommender snapshot"):
        load_snapshot(path)
    assert not list(tmp_path.glob("*.partial"))


def test_users_round_trip_as_columns_and_odd_values_keep_plain_pickling(tmp_path):
    items, clock = make_items(), Clock(NOW)
    rec = Recommender(clock=clock)
    rec.upsert_items(items)
    rec.record_events(_history(items), history_end=NOW)
    state = rec._state
    save_snapshot(rec, tmp_path / "state")
    restored = load_snapshot(tmp_path / "state", clock=clock)[0]._state
    assert list(restored.users) == list(state.users) and state.users
    for user_id, user in state.users.items():
        again = restored.users[user_id]
        for name in ("n_events", "first_seen_at", "follows"):
            assert getattr(again, name) == getattr(user, name), name
        for name in ("seen", "liked", "engaged"):
            assert list(getattr(again, name).items()) == list(getattr(user, name).items()), name  # order too
        for name in ("short_scores", "long_positive", "long_negative"):
            ours, theirs = getattr(again, name), getattr(user, name)
            assert ours.rate == theirs.rate and list(ours._values.items()) == list(theirs._values.items())
    odd = next(iter(state.users.values()))
    odd.seen["v-none"] = None  # not a float: the users are pickled as they are, and still come back
    save_snapshot(rec, tmp_path / "odd")
    assert load_snapshot(tmp_path / "odd", clock=clock)[0]._state.users[odd.user_id].seen["v-none"] is None
