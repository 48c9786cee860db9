"""Restart from the recommender's state snapshot: it equals a full replay of the event log, and a corrupt or
old-version snapshot falls back to that replay.

Phase 1 builds a catalogue and a history through the app's own services and stops (which writes the snapshot);
phase 2 stores more events while the recommender is down (a command that does without it); then a start from the
snapshot, which replays only what came after it, is compared with a start from no snapshot at all: the same feed
for the same user at the same clock.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np

from app.adapters.vector_store import VideoVectors
from app.config import Settings
from app.db.migrate import upgrade
from app.db.models import User, Video
from app.domain.events.writer import EventIn
from app.server.services import Services
from recommender import FeedContext, RecommenderConfig, ingest
from recommender.snapshot import MAGIC
from tests.conftest import make_settings

TOPICS = ("cooking", "cars", "cats")
DIM = 16
VIEWERS = ("u_ann", "u_bob")


async def _started(settings: Settings, recommender: bool = True) -> Services:
    await asyncio.to_thread(upgrade, settings)
    services = Services.build(settings)
    await services.start(scheduler=False, recommender=recommender)
    return services


async def _history(settings: Settings) -> list[str]:
    """Catalogue + first half of the events with the recommender running; stop writes the snapshot."""
    services = await _started(settings)
    rng = np.random.default_rng(3)
    centres = {topic: rng.normal(size=DIM) for topic in TOPICS}
    ids: list[str] = []
    async with services.db.write() as session:
        for uid in ("u_maker", *VIEWERS):
            session.add(User(id=uid, username=uid[2:], display_name=uid, is_guest=False))
        await session.flush()
        created = datetime.now(UTC) - timedelta(days=1)
        for topic in TOPICS:
            for i in range(8):
                video = Video(creator_id="u_maker", state="ready", caption=f"{topic} {i}", hashtags=[topic],
                              topic=topic, duration=10.0, created_at=created + timedelta(minutes=i))
                session.add(video)
                await session.flush()
                ids.append(video.id)
    for n, video_id in enumerate(ids):
        vector = centres[TOPICS[n // 8]] + 0.2 * rng.normal(size=DIM)
        services.vectors.upsert_video(VideoVectors(
            video_id=video_id, creator_id="u_maker", topic=TOPICS[n // 8], hashtags=[TOPICS[n // 8]],
            caption="", duration=10.0, created_at=time.time(), content_vector=vector / np.linalg.norm(vector),
            content_model="test:clustered"))
        await services.recommender.refresh_video(video_id)
    await services.events.submit(_events(ids[:8], "u_ann") + _events(ids[8:16], "u_bob"))
    await services.stop()
    return ids


def _events(video_ids: list[str], user_id: str) -> list[EventIn]:
    out = []
    for video_id in video_ids:
        out.append(EventIn(uuid.uuid4().hex, "impression", user_id, video_id, "u_maker"))
        out.append(EventIn(uuid.uuid4().hex, "view", user_id, video_id, "u_maker", watch_duration=10.0,
                           additional_info={"final": True, "watch_ratio": 1.0}))
    out.append(EventIn(uuid.uuid4().hex, "like", user_id, video_ids[0], "u_maker"))
    return out


async def _more_while_down(settings: Settings, ids: list[str]) -> None:
    services = await _started(settings, recommender=False)
    assert services.recommender.engine is None  # a command that does not need it does not build it
    await services.events.submit(_events(ids[16:], "u_ann") + _events(ids[:4], "u_bob"))
    await services.stop()


async def _feeds(settings: Settings, now: float, write_snapshot: bool = False) -> tuple[dict, dict[str, list[str]]]:
    services = await _started(settings)
    summary = dict(services.recommender.last_bootstrap)
    engine = services.recommender.engine
    feeds = {user: [r.item_id for r in engine.recommend(user, 10, FeedContext(session_id="same", now=now))]
             for user in VIEWERS}
    if not write_snapshot:
        services.recommender.snapshot_path = None  # leave the snapshot on disk as it was
    await services.stop()
    return summary, feeds


def _copy(src: Settings, dst_dir) -> Settings:  # noqa: ANN001
    shutil.copytree(src.data_dir, dst_dir)
    return make_settings(dst_dir)


def test_snapshot_round_trip_equals_replay_and_a_bad_snapshot_falls_back(tmp_path):
    settings = make_settings(tmp_path / "data")
    ids = asyncio.run(_history(settings))
    assert settings.recommender_snapshot_path.is_file()
    asyncio.run(_more_while_down(settings, ids))
    now = time.time()

    replay = _copy(settings, tmp_path / "replay")
    replay.recommender_snapshot_path.unlink()
    replay_summary, replay_feeds = asyncio.run(_feeds(replay, now))
    assert not replay_summary["from_snapshot"] and replay_summary["events"] == 17 + 17 + 17 + 9

    snap_summary, snap_feeds = asyncio.run(_feeds(settings, now))
    assert snap_summary["from_snapshot"] and snap_summary["snapshot_fallback"] is None
    assert snap_summary["events"] == 17 + 9  # only what came after the snapshot
    assert snap_feeds == replay_feeds and all(snap_feeds.values())

    corrupt = _copy(settings, tmp_path / "corrupt")
    raw = bytearray(corrupt.recommender_snapshot_path.read_bytes())
    raw[-10] ^= 0xFF
    corrupt.recommender_snapshot_path.write_bytes(bytes(raw))
    corrupt_summary, corrupt_feeds = asyncio.run(_feeds(corrupt, now))
    assert not corrupt_summary["from_snapshot"] and "checksum" in corrupt_summary["snapshot_fallback"]
    assert corrupt_feeds == replay_feeds

    old = _copy(settings, tmp_path / "old")
    header, _, payload = old.recommender_snapshot_path.read_bytes().partition(b"\n")
    fields = json.loads(header[len(MAGIC):])
    old.recommender_snapshot_path.write_bytes(MAGIC + json.dumps({**fields, "version": 0}).encode() + b"\n" + payload)
    old_summary, old_feeds = asyncio.run(_feeds(old, now))
    assert not old_summary["from_snapshot"] and "format" in old_summary["snapshot_fallback"]
    assert old_feeds == replay_feeds


def test_vectors_come_from_the_snapshot_only_while_the_vector_folder_is_unchanged(tmp_path):
    settings = make_settings(tmp_path / "data")
    ids = asyncio.run(_history(settings))  # vectors written after its start: its snapshot cannot vouch for them
    now = time.time()
    first, _ = asyncio.run(_feeds(settings, now, write_snapshot=True))
    assert first["from_snapshot"] and first["vectors_from"] == "lancedb" and first["with_vectors"] == len(ids)

    unchanged, unchanged_feeds = asyncio.run(_feeds(_copy(settings, tmp_path / "unchanged"), now))
    assert unchanged["vectors_from"] == "snapshot" and unchanged["with_vectors"] == len(ids)
    forced = _copy(settings, tmp_path / "forced")  # the same state, but a header that vouches for no vectors
    header, _, payload = forced.recommender_snapshot_path.read_bytes().partition(b"\n")
    fields = json.loads(header[len(MAGIC):])
    fields["meta"].pop("vectors")
    forced.recommender_snapshot_path.write_bytes(MAGIC + json.dumps(fields).encode() + b"\n" + payload)
    read, read_feeds = asyncio.run(_feeds(forced, now))
    assert read["vectors_from"] == "lancedb" and read["from_snapshot"]
    assert unchanged_feeds == read_feeds and all(read_feeds.values())

    rewritten = _copy(settings, tmp_path / "rewritten")  # another process re-indexed a video while we were down
    asyncio.run(_rewrite_vector(rewritten, ids[0]))
    summary, _ = asyncio.run(_feeds(rewritten, now))
    assert summary["vectors_from"] == "lancedb" and summary["with_vectors"] == len(ids)

    published = _copy(settings, tmp_path / "published")  # ready while we were down, unknown to the snapshot
    asyncio.run(_publish_without_vector(published))
    summary, _ = asyncio.run(_feeds(published, now))
    assert summary["vectors_from"] == "lancedb" and summary["items"] == len(ids) + 1


async def _rewrite_vector(settings: Settings, video_id: str) -> None:
    services = await _started(settings, recommender=False)
    services.vectors.upsert_video(VideoVectors(
        video_id=video_id, creator_id="u_maker", topic="cats", hashtags=["cats"], caption="", duration=10.0,
        created_at=time.time(), content_vector=np.ones(DIM) / np.sqrt(DIM), content_model="test:clustered"))
    await services.stop()


async def _publish_without_vector(settings: Settings) -> None:
    services = await _started(settings, recommender=False)
    async with services.db.write() as session:
        session.add(Video(creator_id="u_maker", state="ready", caption="late", topic="cats", duration=10.0))
    await services.stop()


def test_a_full_replay_logs_training_features_only_for_the_examples_the_buffer_keeps(tmp_path, monkeypatch):
    # The example buffer keeps the newest max_training_examples; each impression opens one. A replay without a
    # snapshot computes feature rows from the max_training_examples-th newest impression on, not for the history.
    settings = make_settings(tmp_path / "data")
    asyncio.run(_history(settings))  # 16 impressions, each followed by a view of the same card
    settings.recommender_snapshot_path.unlink()
    calls = []
    real = ingest.exposure_features
    monkeypatch.setattr(ingest, "exposure_features", lambda *args: calls.append(args[3]) or real(*args))
    everything = asyncio.run(_replayed_examples(settings, RecommenderConfig()))
    assert len(calls) == len(everything) == 16  # one per impression (each view and like labels its card's example)
    calls.clear()
    examples = asyncio.run(_replayed_examples(settings, RecommenderConfig(max_training_examples=5)))
    # the five newest impressions, and u_bob's like after them of a card served before them: with no example
    # open for it, the like opens one
    assert len(calls) == 6 and len(examples) == 5
    assert {e.opened_at for e in examples} <= set(calls)


async def _replayed_examples(settings: Settings, config: RecommenderConfig) -> list:
    await asyncio.to_thread(upgrade, settings)
    services = Services.build(settings)
    services.recommender.config = config
    await services.start(scheduler=False)
    assert not services.recommender.last_bootstrap["from_snapshot"]
    buffer = services.recommender.engine._state.examples
    buffer.close_idle(time.time() + 86_400)
    examples = list(buffer.finished)
    services.recommender.snapshot_path = None
    await services.stop()
    return examples
