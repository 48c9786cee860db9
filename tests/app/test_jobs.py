"""Job leases in one process, several runners: claims, heartbeats, expiry, and periodic jobs once per interval.

Each ``JobRunner`` / ``Scheduler`` here stands for a separate process (its own owner name) sharing one database;
the multi-process versions with real ``foryou`` subprocesses are in test_process_roles.py. Step bodies are test
doubles so that timing is under the test's control; the real pipeline runs in test_pipeline.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.db.leases import PeriodicLeases
from app.db.migrate import upgrade
from app.db.models import JobLease, MediaJob, User, Video
from app.domain.videos.jobs import JobRunner
from app.server.scheduler import ScheduledJob, Scheduler

pytestmark = pytest.mark.both_databases
STEPS = ("probe", "transcode", "publish")


@pytest.fixture
async def db(settings) -> AsyncIterator[Database]:
    await asyncio.to_thread(upgrade, settings)
    database = Database(settings.resolved_database_url)
    yield database
    await database.dispose()


async def add_processing_video(db: Database, steps: tuple[str, ...] = STEPS) -> str:
    async with db.write() as session:
        if await session.get(User, "u_maker") is None:
            session.add(User(id="u_maker", username="maker", is_guest=False))
            await session.flush()
        video = Video(creator_id="u_maker", state="processing")
        session.add(video)
        await session.flush()
        session.add_all(MediaJob(video_id=video.id, step=step, position=i) for i, step in enumerate(steps))
        return video.id


async def jobs_of(db: Database, video_id: str) -> dict[str, MediaJob]:
    async with db.read() as session:
        rows = (await session.execute(select(MediaJob).where(MediaJob.video_id == video_id))).scalars().all()
    return {row.step: row for row in rows}


def runner(db: Database, owner: str, run_step, lease_s: float = 30.0) -> JobRunner:  # noqa: ANN001
    return JobRunner(db, run_step, owner=owner, lease_s=lease_s)


async def test_a_live_lease_is_never_reclaimed_and_blocks_the_next_step(db):
    video_id = await add_processing_video(db)
    first = runner(db, "worker-a", None)
    claimed = await first.claim()
    assert claimed is not None and claimed[1].step == "probe"

    second = runner(db, "worker-b", None)
    assert await second.reclaim_expired() == 0
    assert await second.claim() is None  # probe is held, transcode waits for it
    probe = (await jobs_of(db, video_id))["probe"]
    assert probe.status == "running" and probe.lease_owner == "worker-a" and probe.attempts == 1
    assert probe.lease_expires_at is not None


async def test_a_heartbeat_keeps_a_long_step_its_own(db):
    video_id = await add_processing_video(db, ("transcode",))
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_step(video, job):  # noqa: ANN001, ANN202
        started.set()
        await release.wait()
        return {"took": "a while"}

    holder = runner(db, "worker-a", slow_step, lease_s=0.4)  # heartbeat every 0.1 s
    running = asyncio.create_task(holder.run_next())
    await started.wait()
    other = runner(db, "worker-b", None, lease_s=0.4)
    for _ in range(6):  # three lease lengths: without the heartbeat the lease would have expired
        await asyncio.sleep(0.2)
        assert await other.claim() is None
    release.set()
    assert await running == f"{video_id}:transcode:ok"
    job = (await jobs_of(db, video_id))["transcode"]
    assert job.status == "succeeded" and job.attempts == 1 and job.lease_owner is None


async def test_an_expired_lease_passes_the_step_to_another_worker_and_the_first_result_is_discarded(db):
    video_id = await add_processing_video(db, ("transcode", "publish"))
    ran: list[str] = []
    release = asyncio.Event()

    async def stuck_step(video, job):  # noqa: ANN001, ANN202 - a worker that stopped renewing (frozen, partitioned)
        ran.append(f"stuck:{job.step}")
        await release.wait()
        return {}

    async def good_step(video, job):  # noqa: ANN001, ANN202
        ran.append(f"good:{job.step}")
        return {}

    frozen = runner(db, "worker-a", stuck_step, lease_s=0.3)
    frozen.heartbeat_s = 3600  # its heartbeat never comes
    first = asyncio.create_task(frozen.run_next())
    while not ran:
        await asyncio.sleep(0.01)
    rescuer = runner(db, "worker-b", good_step, lease_s=30)
    assert await rescuer.claim() is None  # not expired yet
    await asyncio.sleep(0.4)
    assert await rescuer.drain() == 2  # takes transcode over, then publish
    release.set()
    assert await first == f"{video_id}:transcode:lost"
    jobs = await jobs_of(db, video_id)
    assert ran == ["stuck:transcode", "good:transcode", "good:publish"]
    assert jobs["transcode"].status == "succeeded" and jobs["transcode"].attempts == 2
    assert jobs["publish"].attempts == 1


async def test_many_workers_at_once_run_every_step_exactly_once_and_in_order(db):
    videos = [await add_processing_video(db) for _ in range(4)]
    ran: list[tuple[str, str, str]] = []

    def step_runner(owner: str):  # noqa: ANN202
        async def run_step(video, job):  # noqa: ANN001, ANN202
            ran.append((video.id, job.step, owner))
            await asyncio.sleep(0.01)
            return {}

        return run_step

    workers = [runner(db, f"worker-{i}", step_runner(f"worker-{i}")) for i in range(6)]
    counts = await asyncio.gather(*(worker.drain() for worker in workers))
    assert sum(counts) == len(videos) * len(STEPS)
    for video_id in videos:
        assert [step for vid, step, _ in ran if vid == video_id] == list(STEPS)
        assert {job.status for job in (await jobs_of(db, video_id)).values()} == {"succeeded"}
        assert {job.attempts for job in (await jobs_of(db, video_id)).values()} == {1}
    assert len({owner for _, _, owner in ran}) > 1  # the work was shared, not done by one runner


async def test_a_periodic_job_runs_once_per_interval_however_many_schedulers_tick(db):
    runs: list[str] = []

    def scheduler(owner: str) -> tuple[Scheduler, ScheduledJob]:
        async def work() -> dict:
            runs.append(owner)
            await asyncio.sleep(0.05)
            return {}

        job = ScheduledJob("recommender:trends", 0.5, work)
        return Scheduler([job], PeriodicLeases(db, owner, lease_s=30)), job

    (first, job_a), (second, job_b) = scheduler("a"), scheduler("b")
    await first.leases.ensure([job_a.name])
    await second.leases.ensure([job_b.name])
    assert not await first.run_if_due(job_a)  # a new job is first due one interval after its row appears
    await asyncio.sleep(0.55)
    outcomes = await asyncio.gather(first.run_if_due(job_a), second.run_if_due(job_b))
    assert sorted(outcomes) == [False, True] and len(runs) == 1
    assert not await second.run_if_due(job_b)  # finished, but its interval has not passed
    assert not await first.run_if_due(job_a)
    await asyncio.sleep(0.55)
    assert await second.run_if_due(job_b) and not await first.run_if_due(job_a)
    assert len(runs) == 2
    async with db.read() as session:
        lease = await session.get(JobLease, "recommender:trends")
    assert lease.runs == 2 and lease.owner is None and lease.last_finished_at is not None


async def test_a_periodic_job_held_by_a_dead_scheduler_is_taken_over_when_its_lease_expires(db):
    dead = PeriodicLeases(db, "dead", lease_s=0.3)
    await dead.ensure(["recommender:video_stats"])
    await asyncio.sleep(0.1)
    assert await dead.try_start("recommender:video_stats", every_s=0.1)  # and then it is killed: no finish
    alive = PeriodicLeases(db, "alive", lease_s=30)
    await asyncio.sleep(0.15)
    assert not await alive.try_start("recommender:video_stats", every_s=0.1)  # due, but the lease still holds
    await asyncio.sleep(0.2)
    assert await alive.try_start("recommender:video_stats", every_s=0.1)
    assert not await dead.renew("recommender:video_stats")  # the dead owner's late heartbeat changes nothing


async def test_stopping_the_scheduler_waits_for_a_running_job_and_cancels_one_past_the_grace(db):
    """APScheduler's own shutdown leaves running jobs behind; they kept using the database after the app had
    disposed it, and the loop's final cancellation then hung closing their connections."""
    started, finished = asyncio.Event(), []

    def scheduler(seconds: float) -> tuple[Scheduler, ScheduledJob]:
        async def work() -> dict:
            started.set()
            await asyncio.sleep(seconds)
            finished.append(seconds)
            return {}

        job = ScheduledJob("recommender:trends", 0.2, work)
        return Scheduler([job], PeriodicLeases(db, "me", lease_s=30)), job

    for seconds, grace, expect_finished in ((0.5, 10.0, True), (30.0, 0.3, False)):
        started.clear()
        runner, job = scheduler(seconds)
        await runner.leases.ensure([job.name])
        await runner.start()
        await asyncio.wait_for(started.wait(), 20)
        await runner.stop(grace_s=grace)
        assert not runner._running, "a job task outlived the scheduler's stop"
        assert (seconds in finished) == expect_finished
        assert not await runner.run_if_due(job), "a stopped scheduler must not start jobs"
