"""The recommender's event worker: committed batches applied together, a segment per hold of the state lock, and
each viewer's feed let go as soon as that viewer's own events are in."""

import threading

from tests.app.helpers import services
from tests.app.test_interactions import add_ready


def test_queued_batches_are_applied_together_and_each_viewer_is_released_with_its_last_event(client, monkeypatch):
    from app.domain.events.writer import EventIn, StoredEvent
    from app.domain.feed.recommender import APPLY_SEGMENT

    recommender = services(client).recommender
    engine = recommender.engine
    video = add_ready(client)
    ids = iter(range(10_000))

    def stored(user: str) -> StoredEvent:
        return StoredEvent(EventIn(event_id=f"w{next(ids)}", event_type="like", user_id=user, video_id=video),
                           True, None)

    calls: list[tuple[int, bool, bool]] = []  # per hold of the lock: events, u_early and u_late caught up
    started = threading.Event()
    real = engine.record_live_events

    def recording(events):  # noqa: ANN001, ANN202
        calls.append((len(events), recommender.caught_up("u_early", 0), recommender.caught_up("u_late", 0)))
        started.set()
        return real(events)

    monkeypatch.setattr(engine, "record_live_events", recording)
    with engine._state.lock:  # the worker takes the first batch, then stalls on the lock with it
        recommender.on_events([stored("u_first")])
        assert started.wait(5.0)
        # two more commits queue meanwhile: one viewer early in the first, another at its end, one more after
        recommender.on_events([stored("u_early"), *(stored("u_late") for _ in range(APPLY_SEGMENT + 5))])
        recommender.on_events([stored("u_other")])
    assert recommender.caught_up(timeout=5.0)
    # the two queued batches went in as one group, in two holds of the lock; u_early was let go after the first
    # (its only event was in it) while u_late still waited for the second
    assert calls[1:] == [(APPLY_SEGMENT, False, False), (7, True, False)]
    assert engine.inspect_user("u_late")["events"] == APPLY_SEGMENT + 5
    assert not recommender._waiters and not recommender._pending_of
