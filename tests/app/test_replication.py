"""Replicas kept in step through NATS JetStream (this machine's server at 127.0.0.1:4222; skipped without it).

Two app processes' worth of services share one data dir and one stream; each holds its own recommender. A
video announced by one appears in the other's catalogue; an event stored by one changes the other's next For
You page within a second; a replica that was away resumes from the last message it acknowledged.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from app.adapters.event_stream import EventStream, StreamMessage
from app.adapters.vector_store import VideoVectors
from app.db.migrate import upgrade
from app.db.models import User, Video
from app.domain.events.writer import EventIn
from app.server.services import Services
from tests.conftest import make_settings
from tests.streams import NATS_URL, drop_stream, require_nats


@pytest.fixture
async def stream_name():
    await require_nats()
    name = f"foryou_test_{uuid.uuid4().hex[:10]}"
    yield name
    await drop_stream(name)


async def _wait_for(predicate, timeout_s: float, step_s: float = 0.02) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout_s``."""
    started = time.perf_counter()
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout_s:
            raise AssertionError(f"not reached within {timeout_s} s")
        await asyncio.sleep(step_s)


async def _catalogue(services: Services, n: int = 12) -> list[str]:
    """Ready videos with clustered vectors, written to the shared database and LanceDB, announced by ``services``."""
    rng = np.random.default_rng(3)
    ids: list[str] = []
    async with services.db.write() as session:
        session.add(User(id="u_maker", username="maker", display_name="Maker", is_guest=False))
        session.add(User(id="u_viewer", username="viewer", display_name="Viewer", is_guest=False))
        await session.flush()
        for i in range(n):
            video = Video(creator_id="u_maker", state="ready", caption=f"clip {i}", duration=10.0,
                          topic="cats" if i % 2 else "cars", created_at=datetime.now(UTC) - timedelta(hours=i))
            session.add(video)
            await session.flush()
            ids.append(video.id)
    for video_id in ids:
        vector = rng.normal(size=16)
        services.vectors.upsert_video(VideoVectors(
            video_id=video_id, creator_id="u_maker", topic="", hashtags=[], caption="clip", duration=10.0,
            created_at=time.time(), content_vector=vector / np.linalg.norm(vector), content_model="test:random"))
        await services.recommender.refresh_video(video_id)
    return ids


async def _page(services: Services) -> list[str]:
    picks = await services.recommender.recommend("u_viewer", 6, frozenset(), session_key=uuid.uuid4().hex)
    return [pick.video_id for pick in picks]


async def test_event_stored_by_one_replica_changes_the_others_next_page_within_a_second(tmp_path, stream_name):
    base = make_settings(tmp_path / "data", event_stream_url=NATS_URL, event_stream_name=stream_name)
    await asyncio.to_thread(upgrade, base)
    replica_a = Services.build(base.with_overrides(replica_id="a"))
    replica_b = Services.build(base.with_overrides(replica_id="b"))
    await replica_a.start(scheduler=False)
    await replica_b.start(scheduler=False)
    try:
        ids = await _catalogue(replica_a)
        # B never read these videos itself: the announcements brought them.
        await _wait_for(lambda: len(replica_b.recommender.engine._state.catalog) == len(ids), timeout_s=5)
        before = await _page(replica_b)
        assert before, "B serves a page once it knows the catalogue"
        watched = before[0]
        exposures_before = replica_b.recommender.engine.inspect_user("u_viewer").get("exposures", 0)

        sent = time.perf_counter()
        await replica_a.events.submit([EventIn(
            event_id=f"ev-{uuid.uuid4().hex}", event_type="view", user_id="u_viewer", video_id=watched,
            creator_id="u_maker", watch_duration=10.0, additional_info={"final": True})])

        def b_heard_it() -> bool:
            return replica_b.recommender.engine.inspect_user("u_viewer").get("exposures", 0) > exposures_before

        latency = await _wait_for(b_heard_it, timeout_s=1.0)
        assert time.perf_counter() - sent < 1.0, latency
        for _ in range(3):  # B's pages (randomised by exploration) no longer offer what was just watched
            assert watched not in await _page(replica_b)
        # A heard its own event back from the stream and applied it once.
        assert watched not in await _page(replica_a)
        assert replica_b.replication.stream.applied >= len(ids) + 1

        # An account deleted through A leaves B's memory too.
        assert replica_b.recommender.engine.inspect_user("u_viewer")["known"]
        replica_a.recommender.forget_user("u_viewer")
        await _wait_for(lambda: not replica_b.recommender.engine.inspect_user("u_viewer")["known"], timeout_s=1.0)
    finally:
        await replica_a.stop()
        await replica_b.stop()


async def test_a_replica_resumes_after_the_last_message_it_acknowledged(stream_name):
    got: list[StreamMessage] = []

    async def collect(message: StreamMessage) -> None:
        got.append(message)

    publisher = EventStream(NATS_URL, stream_name, "publisher")
    await publisher.start()
    started = datetime.now(UTC) - timedelta(seconds=1)
    replica = EventStream(NATS_URL, stream_name, "replica-1")
    await replica.start()
    await replica.consume(collect, first_start=started)
    try:
        for i in range(3):
            publisher.publish("event", {"n": i}, message_id=f"m{i}")
        publisher.publish("event", {"n": 2}, message_id="m2")  # a retry: stored once
        await publisher.flush()
        await _wait_for(lambda: len(got) == 3, timeout_s=5)
        await asyncio.sleep(0.2)  # acknowledgements reach the server
        await replica.stop()

        for i in range(3, 5):
            publisher.publish("video", {"n": i}, message_id=f"m{i}")
        await publisher.flush()

        got.clear()
        restarted = EventStream(NATS_URL, stream_name, "replica-1")
        await restarted.start()
        await restarted.consume(collect, first_start=datetime.now(UTC))  # the stored position wins
        await _wait_for(lambda: len(got) == 2, timeout_s=5)
        await asyncio.sleep(0.3)
        assert [m.body["n"] for m in got] == [3, 4], "only what it missed, in order"
        assert [m.kind for m in got] == ["video", "video"]
        assert got[0].sequence == 4

        # A second live process under the same replica id follows under a name of its own.
        twin = EventStream(NATS_URL, stream_name, "replica-1")
        await twin.start()
        await twin.consume(collect, first_start=datetime.now(UTC))
        assert twin.replica_id != "replica-1" and twin.replica_id.startswith("replica-1-")
        await twin.stop()
        await restarted.stop()
    finally:
        await publisher.stop()


async def test_job_outputs_computed_once_are_loaded_by_every_replica(tmp_path, stream_name):
    base = make_settings(tmp_path / "data", event_stream_url=NATS_URL, event_stream_name=stream_name)
    await asyncio.to_thread(upgrade, base)
    scheduler = Services.build(base.with_overrides(replica_id="scheduler"))
    web = Services.build(base.with_overrides(replica_id="web-1"))
    await scheduler.start(scheduler=False)
    await web.start(scheduler=False)
    late = None
    try:
        ids = await _catalogue(scheduler)
        # A burst of shares on one video, stored through the web replica: the scheduler hears them on the stream.
        async with web.db.write() as session:
            session.add_all([User(id=f"u_fan{u}") for u in range(15)])
        await web.events.submit([EventIn(event_id=f"share-{u}-{uuid.uuid4().hex[:6]}", event_type="share",
                                         user_id=f"u_fan{u}", video_id=ids[0], creator_id="u_maker")
                                 for u in range(15)])
        await _wait_for(lambda: scheduler.recommender.engine._state.events.appended >= 15, timeout_s=5)

        summary = await scheduler.recommender.run_job("trends")
        version = summary["published_version"]
        assert scheduler.recommender.engine._state.trending[:1] == [ids[0]]
        await _wait_for(lambda: web.snapshots.loaded.get("trends") == version, timeout_s=1.0)
        assert web.recommender.engine._state.trending == scheduler.recommender.engine._state.trending
        assert web.recommender.engine.inspect_item(ids[0])["trend"] > 0
        assert "trends" not in web.recommender.engine.last_job_runs(), "the replica loaded, it did not recompute"

        # A replica that starts later takes the newest outputs at start-up.
        await scheduler.recommender.run_job("trends")
        assert (await scheduler.snapshots.versions())["trends"] > version
        late = Services.build(base.with_overrides(replica_id="web-2"))
        await late.start(scheduler=False)
        assert late.snapshots.loaded["trends"] == (await scheduler.snapshots.versions())["trends"]
        assert late.recommender.engine._state.trending[:1] == [ids[0]]
    finally:
        for services in (scheduler, web, late):
            if services is not None:
                await services.stop()
