"""The bounded event log, and how a snapshot carries it: as columns, back as the same events, still bounded
and de-duplicated after a restore."""

from __future__ import annotations

import pickle

from recommender.events import EventLog
from recommender.types import Event


def _event(n: int, user: str | None = None, **fields) -> Event:  # noqa: ANN003
    base = {"event_id": f"e{n}", "user_id": user or f"u{n % 3}", "event_type": ("view", "like", "skip")[n % 3],
            "timestamp": 1000.0 + n, "item_id": f"v{n % 4}" if n % 5 else None,
            "creator_id": f"c{n % 2}" if n % 7 else None, "watch_duration": 3.5 + n if n % 2 else None,
            "info": {"final": True, "n": n} if n % 3 == 0 else {}}
    return Event(**{**base, **fields})


def _filled(n: int, max_events: int = 100) -> EventLog:
    log = EventLog(max_events)
    for i in range(n):
        assert log.append(_event(i))
    return log


def test_a_restored_log_holds_the_same_events_and_counts():
    log = _filled(40)
    restored = pickle.loads(pickle.dumps(log))
    assert len(restored) == 40 and restored.appended == 40 and restored.max_events == 100
    assert restored.snapshot() == log.snapshot()
    assert list(restored) == list(log)


def test_a_restored_log_stays_deduplicated_bounded_and_ordered():
    log = _filled(10, max_events=12)
    restored = pickle.loads(pickle.dumps(log))
    assert not restored.append(_event(3))  # already logged before the snapshot
    for i in range(10, 15):
        assert restored.append(_event(i))
    assert len(restored) == 12 and restored.appended == 15
    assert [e.event_id for e in restored] == [f"e{i}" for i in range(3, 15)]
    assert restored.append(_event(0))  # dropped from the window, so no longer a duplicate
    assert [e.event_id for e in restored.since_sequence(14)] == ["e14", "e0"]
    assert [e.event_id for e in restored.since_time(1012.0)] == ["e12", "e13", "e14", "e0"]


def test_eviction_before_the_events_are_read_keeps_the_rest_intact():
    restored = pickle.loads(pickle.dumps(_filled(8, max_events=8)))
    for i in range(8, 11):
        restored.append(_event(i))
    again = pickle.loads(pickle.dumps(restored))  # snapshot of a log still partly held as columns
    assert [e.event_id for e in again] == [f"e{i}" for i in range(3, 11)]
    assert again.snapshot() == restored.snapshot()
    assert not again.append(_event(5)) and again.append(_event(1))


def test_anonymise_rewrites_restored_events():
    restored = pickle.loads(pickle.dumps(_filled(9)))
    assert restored.anonymise("u1", "deleted") == 3
    assert {e.user_id for e in restored} == {"u0", "u2", "deleted"}


def test_ids_holding_the_separator_and_an_empty_log_round_trip():
    log = EventLog(10)
    assert pickle.loads(pickle.dumps(log)).snapshot() == []
    log.append(_event(1, event_id="a\x00b"))
    log.append(_event(2, event_id=""))
    assert pickle.loads(pickle.dumps(log)).snapshot() == log.snapshot()


def test_a_log_pickled_as_rows_by_an_older_build_still_loads():
    events = [_event(i) for i in range(5)]
    rows = [(e.event_id, e.user_id, e.event_type, e.timestamp, e.item_id, e.creator_id, e.watch_duration, e.info)
            for e in events]
    log = EventLog.__new__(EventLog)
    log.__setstate__({"max_events": 10, "appended": 5, "rows": rows})
    assert log.snapshot() == events and not log.append(events[0]) and len(log) == 5
