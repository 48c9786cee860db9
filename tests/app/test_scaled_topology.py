"""Issue 15's acceptance: the scaled topology as real processes on this machine's PostgreSQL and NATS JetStream.

Two ``foryou serve`` replicas (web only), two ``foryou worker`` processes and two ``foryou scheduler`` processes
share a fresh PostgreSQL database, one JetStream stream and one data dir (files on local disk here; object
storage has its own test). Every wait is bounded; without PostgreSQL or NATS the test says so and skips.

- an upload through replica A is processed by a worker and appears in replica B's feed;
- a worker killed mid-step leaves that step to the other worker, which finishes it exactly once;
- an event posted to A changes B's next For You page within a second;
- each periodic job runs once per interval although two schedulers run, and its outputs are published as
  versioned snapshots.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from app.adapters.vector_store import VectorStore, VideoVectors
from app.db.engine import Database
from app.db.models import User, Video
from app.domain.videos.pipeline import PIPELINE_STEPS
from tests.app.test_accounts import signup
from tests.app.test_process_roles import LEASE_S, Fleet, free_port, upload_demo_clips, wait_for
from tests.conftest import csrf_of
from tests.streams import NATS_URL, drop_stream, require_nats

pytestmark = pytest.mark.slow
PG_SERVER = os.environ.get("FORYOU_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
CARD_ID = re.compile(r'data-video-id="([^"]+)"')
# Ready videos already there, ten days old: more than a page, so a page never needs what a viewer has seen,
# and none of them new, so the upload is the one new video a page's cold-start slot goes to.
SYNTHETIC = 8
DIM = 384  # the sentence encoder's size, which the worker's vectors have without CLIP weights


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=3) as connection:
        connection.execute(sql)


class PgFleet(Fleet):
    """The role-test fleet, on PostgreSQL and the stream."""

    def __init__(self, data_dir: Path, logs: Path, database: str, stream: str) -> None:
        super().__init__(data_dir, logs)
        self.database = database
        self.stream = stream

    @property
    def sync_url(self) -> str:
        return f"{PG_SERVER}/{self.database}"

    def env(self, **extra: str) -> dict[str, str]:
        return super().env(FORYOU_DATABASE_URL=self.sync_url.replace("postgresql://", "postgresql+asyncpg://"),
                           FORYOU_EVENT_STREAM_URL=NATS_URL, FORYOU_EVENT_STREAM_NAME=self.stream, **extra)

    def query(self, sql: str, *params: object) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.sync_url, connect_timeout=5) as connection:
            return connection.execute(sql.replace("?", "%s"), params).fetchall()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[PgFleet]:
    try:
        _pg_admin("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure to connect means: not available here
        pytest.skip(f"PostgreSQL at {PG_SERVER} unreachable ({type(exc).__name__}); scaled-topology test skipped")
    asyncio.run(require_nats())
    database = f"foryou_topology_{uuid.uuid4().hex[:8]}"
    stream = f"foryou_topology_{uuid.uuid4().hex[:8]}"
    _pg_admin(f'CREATE DATABASE "{database}"')
    logs = tmp_path / "logs"
    logs.mkdir()
    group = PgFleet(tmp_path / "data", logs, database, stream)
    try:
        yield group
    finally:
        group.stop_all()
        asyncio.run(drop_stream(stream))
        _pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _synthetic_catalogue(fleet: PgFleet) -> list[str]:
    """Ready videos written straight to the database and LanceDB before the replicas start (they bootstrap)."""
    rng = np.random.default_rng(11)
    ids = [f"v_synth{i}" for i in range(SYNTHETIC)]

    async def write() -> None:
        db = Database(fleet.env()["FORYOU_DATABASE_URL"])
        async with db.write() as session:
            # one creator each: the feed spreads a creator's videos out, and this test wants whole pages
            session.add_all([User(id=f"u_maker{i}", username=f"maker{i}", is_guest=False) for i in range(SYNTHETIC)])
            await session.flush()
            for i, video_id in enumerate(ids):
                session.add(Video(id=video_id, creator_id=f"u_maker{i}", state="ready", caption=f"synthetic {i}",
                                  duration=8.0, created_at=datetime.now(UTC) - timedelta(days=10, hours=i)))
        await db.dispose()

    asyncio.run(write())
    vectors = VectorStore(fleet.data_dir / "lancedb")
    for i, video_id in enumerate(ids):
        vector = rng.normal(size=DIM)
        vectors.upsert_video(VideoVectors(
            video_id=video_id, creator_id=f"u_maker{i}", topic="", hashtags=[], caption="synthetic", duration=8.0,
            created_at=time.time(), content_vector=vector / np.linalg.norm(vector), content_model="test:random"))
    return ids


def _serve_all(fleet: PgFleet, *names: str) -> list[str]:
    """Web-only replicas, started together; their URLs once every one is ready."""
    started = {}
    for name in names:
        port = free_port()
        started[name] = (fleet.start(name, "serve", "--no-worker", "--no-scheduler", "--port", str(port)),
                         f"http://127.0.0.1:{port}")

    def up(name: str) -> bool:
        process, url = started[name]
        assert process.poll() is None, f"{name} exited:\n{fleet.log(name)}"
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    for name in names:
        wait_for(lambda name=name: up(name), 120, f"{name} to be ready", interval=0.2)
    return [url for _, url in started.values()]


def _for_you(client: httpx.Client, url: str) -> list[str]:
    """One For You page from one replica (serving it logs impressions, which count as exposures: each viewer
    below asks for a page only when the answer is what is being tested)."""
    page = client.get(f"{url}/feed/cards", headers={"hx-request": "true"})
    assert page.status_code == 200
    return list(dict.fromkeys(CARD_ID.findall(page.text)))


def _viewer(url: str, username: str) -> tuple[httpx.Client, str]:
    """A signed-up viewer (on a page that serves no feed), and the session's CSRF token."""
    client = httpx.Client(base_url=url, timeout=30)
    assert signup(client, username=username, csrf=csrf_of(client, "/login")).status_code == 200
    return client, csrf_of(client, "/settings")


def _replication(url: str) -> dict:
    return httpx.get(f"{url}/readyz", timeout=5).json()["checks"]["replication"]


def test_two_replicas_two_workers_two_schedulers_on_postgresql_and_nats(fleet):
    began = time.monotonic()

    def phase(what: str) -> None:
        print(f"[{time.monotonic() - began:6.1f} s] {what}", flush=True)

    fleet.run("db", "upgrade")
    phase("migrated")
    synthetic = _synthetic_catalogue(fleet)
    # Everything starts at once (start-up is most of this test's time); the replicas are waited for.
    workers = {name: fleet.start(name, "worker") for name in ("worker-1", "worker-2")}
    fast = {"FORYOU_JOB_INTERVALS": "trends=2,video_stats=3"}
    schedulers = [fleet.start(name, "scheduler", **fast) for name in ("scheduler-1", "scheduler-2")]
    a, b = _serve_all(fleet, "web-a", "web-b")
    phase("replicas ready, workers and schedulers started")

    # ---- an upload through A, a worker killed mid-step, the other one finishes it exactly once -------------
    (video_id,) = upload_demo_clips(a, clips=1)
    pids = {str(process.pid): name for name, process in workers.items()}

    def mid_step() -> tuple | None:
        rows = fleet.query("SELECT step, lease_owner FROM media_jobs WHERE status = 'running' AND video_id = ?",
                           video_id)
        return rows[0] if rows and rows[0][0] in ("transcode", "transcript", "text_embedding", "fingerprint",
                                                  "clip_images") else None

    phase("uploaded")
    step, owner = wait_for(mid_step, 180, "a worker to be mid-step")
    phase(f"killing the worker in {step}")
    victim = pids[owner.split(":")[1]]
    workers[victim].send_signal(signal.SIGKILL)
    workers[victim].wait(timeout=10)
    killed_at = time.monotonic()
    wait_for(lambda: fleet.query("SELECT state FROM videos WHERE id = ?", video_id)[0][0] != "processing", 240,
             "the other worker to finish the upload", interval=0.2)
    assert fleet.query("SELECT state, failure_reason FROM videos WHERE id = ?", video_id)[0] == ("ready", None)
    wait_for(lambda: not fleet.query("SELECT 1 FROM media_jobs WHERE video_id = ? AND status <> 'succeeded'",
                                     video_id), 30, "the publish step to be recorded")
    assert time.monotonic() - killed_at >= float(LEASE_S) - 1, "taken over only once the lease expired"
    attempts = dict(fleet.query("SELECT step, attempts FROM media_jobs WHERE video_id = ?", video_id))
    assert len(attempts) == len(PIPELINE_STEPS)
    assert attempts.pop(step) == 2 and set(attempts.values()) == {1}, (step, attempts)
    assert fleet.query("SELECT COUNT(*) FROM events WHERE event_type = 'content_upload' AND video_id = ?",
                       video_id) == [(1,)]
    phase("processed")
    survivor = next(name for name in workers if name != victim)
    assert workers[survivor].poll() is None

    # ---- it appears in B's feed (B bootstrapped before it existed: the stream told it) -------------------
    watcher, _ = _viewer(a, "watcher")  # signed up on A; sessions live in the database, so B knows them too
    assert _replication(b)["applied"] > 0, "B follows the stream"
    time.sleep(0.5)  # the worker announced the upload when it published it
    page = _for_you(watcher, b)
    assert video_id in page, f"the new upload holds a cold-start slot on every page of a viewer new to it: {page}"

    phase("upload in B's feed")
    # ---- an event posted to A changes B's next For You page within a second --------------------------------
    # A second viewer, who has been served nothing yet, watches the upload on A. B's page for them a moment
    # later leaves it out (seen), where every unseen viewer's page has it (above): B heard the event from A.
    viewer, csrf = _viewer(a, "viewer")
    beacon = {"csrf": csrf, "events": [{"event_id": f"ev{uuid.uuid4().hex[:16]}", "type": "view",
                                        "video_id": video_id, "watch_duration": 5.0, "info": {"final": True}}]}
    posted = viewer.post(f"{a}/api/events", json=beacon)
    assert posted.status_code == 202, posted.text
    sent = time.monotonic()
    time.sleep(0.5)
    asked_after = time.monotonic() - sent
    page = _for_you(viewer, b)
    assert asked_after < 1.0 and video_id not in page and len(page) == 6, (asked_after, page)
    assert set(page) <= set(synthetic)

    phase("event seen by B")
    # ---- each periodic job once per interval across two schedulers; outputs published as snapshots ----------
    def runs() -> dict[str, int]:
        return dict(fleet.query("SELECT name, runs FROM job_leases"))

    wait_for(lambda: runs().get("recommender:trends", 0) >= 2, 60, "trends to run")
    before, started = runs(), time.monotonic()
    time.sleep(6)
    after, elapsed = runs(), time.monotonic() - started
    for job, every_s in (("recommender:trends", 2.0), ("recommender:video_stats", 3.0)):
        ran = after[job] - before[job]
        # once per interval across both schedulers (each on its own would double it), within a tick
        assert elapsed / (every_s * 1.25) - 1.5 <= ran <= elapsed / every_s + 1, (job, ran, elapsed)
    newest = dict(fleet.query("SELECT job, MAX(version) FROM recommender_snapshots GROUP BY job"))
    assert {"trends", "video_stats"} <= set(newest), newest
    sources = {row[0] for row in fleet.query("SELECT DISTINCT source FROM recommender_snapshots")}
    web_ports = {url.rsplit(":", 1)[1] for url in (a, b)}
    assert sources and not {s.rsplit("-", 1)[-1] for s in sources} & web_ports, "only schedulers publish"
    for url in (a, b):  # ... and both replicas load what they publish instead of computing it
        wait_for(lambda url=url: _replication(url)["snapshots"].get("trends", 0) >= newest["trends"] - 2, 10,
                 f"{url} to load the newest trends snapshot")
    assert all(process.poll() is None for process in schedulers)
    watcher.close()
    viewer.close()
