"""The durable media job runner: claims due steps from ``media_jobs`` and runs them one at a time.

Each step of each video is a row. A worker claims the next due step (the lowest unfinished position of a
processing video) with a lease (owner + expiry, see app.db.leases), renews the lease by a heartbeat while the
step runs off the event loop, and records the outcome only if it still holds the lease: success moves the
video on; ``MediaRejected`` fails it for good with a reason for the creator; anything else is retried with
exponential backoff. Several workers (processes) may run at once: on PostgreSQL the claim skips rows another
worker has locked (``FOR UPDATE SKIP LOCKED``), on SQLite it is a conditional ``UPDATE`` inside
``BEGIN IMMEDIATE``. A worker that dies (``kill -9``) stops renewing; once its lease has expired any worker puts
the step back to pending and runs it again (steps are idempotent). Live leases are never reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import aliased

from app.db.engine import Database
from app.db.models import MediaJob, Video, utcnow
from media.errors import MediaRejected

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
BACKOFF_BASE_S = 5.0
DEFAULT_LEASE_S = 30.0
CLAIM_RACES = 8  # SQLite: a worker that lost a step to another looks for the next one this many times

StepRunner = Callable[[Video, MediaJob], Awaitable[dict]]
Finisher = Callable[[str], Awaitable[None]]


class JobRunner:
    def __init__(self, db: Database, run_step: StepRunner, on_ready: Finisher | None = None, *,
                 owner: str, lease_s: float = DEFAULT_LEASE_S) -> None:
        self.db = db
        self.run_step = run_step
        self.on_ready = on_ready
        self.owner = owner
        self.lease = timedelta(seconds=lease_s)
        self.heartbeat_s = lease_s / 4

    def _expired(self, now):  # noqa: ANN001, ANN202 - a SQL condition
        """Running rows whose lease ran out (rows from before leases existed: 30 minutes after their start)."""
        return and_(MediaJob.status == "running",
                    or_(MediaJob.lease_expires_at < now,
                        and_(MediaJob.lease_expires_at.is_(None), MediaJob.started_at < now - timedelta(minutes=30))))

    async def reclaim_expired(self) -> int:
        """Put steps whose worker stopped renewing its lease back to pending. Live leases are left alone."""
        now = utcnow()
        async with self.db.read() as session:  # the usual answer is "none": no write lock taken for it
            if (await session.execute(select(MediaJob.id).where(self._expired(now)).limit(1))).first() is None:
                return 0
        async with self.db.write() as session:
            result = await session.execute(
                update(MediaJob).where(self._expired(now))
                .values(status="pending", run_after=now, lease_owner=None, lease_expires_at=None)
            )
        reclaimed = result.rowcount or 0
        if reclaimed:
            log.warning("media steps reclaimed from expired leases", extra={"steps": reclaimed})
        return reclaimed

    def _next_due(self, now):  # noqa: ANN001, ANN202 - a select
        """The next pending step of a processing video whose earlier steps have all succeeded."""
        earlier = aliased(MediaJob)
        earlier_unfinished = exists().where(earlier.video_id == MediaJob.video_id,
                                            earlier.position < MediaJob.position, earlier.status != "succeeded")
        return (select(MediaJob.id).join(Video, Video.id == MediaJob.video_id)
                .where(Video.state == "processing", MediaJob.status == "pending", MediaJob.run_after <= now,
                       ~earlier_unfinished)
                .order_by(MediaJob.run_after, MediaJob.video_id, MediaJob.position)
                .limit(1))

    async def claim(self) -> tuple[Video, MediaJob] | None:
        """Atomically take the next due step whose earlier steps have all succeeded, under this worker's lease.

        PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` and the update in one transaction, so concurrent workers
        pass over each other's rows. SQLite: the candidate is found by a read (an idle worker takes no write
        lock), then taken by a conditional ``UPDATE`` in ``BEGIN IMMEDIATE``; a worker that lost the race finds
        the row no longer pending and looks for the next one."""
        await self.reclaim_expired()
        for _ in range(CLAIM_RACES):
            now = utcnow()
            job_id = None
            if self.db.is_sqlite:
                async with self.db.read() as session:
                    job_id = (await session.execute(self._next_due(now))).scalar_one_or_none()
                if job_id is None:
                    return None
            async with self.db.write() as session:
                if not self.db.is_sqlite:
                    job_id = (await session.execute(
                        self._next_due(now).with_for_update(skip_locked=True, of=MediaJob))).scalar_one_or_none()
                    if job_id is None:
                        return None
                still_processing = select(Video.id).where(Video.state == "processing")
                taken = await session.execute(
                    update(MediaJob)
                    .where(MediaJob.id == job_id, MediaJob.status == "pending",
                           MediaJob.video_id.in_(still_processing))
                    .values(status="running", started_at=now, attempts=MediaJob.attempts + 1,
                            lease_owner=self.owner, lease_expires_at=now + self.lease)
                    .execution_options(synchronize_session=False)
                )
                if taken.rowcount == 1:
                    job = await session.get(MediaJob, job_id)
                    video = await session.get(Video, job.video_id)
                    return video, job
        return None  # lost every race: other workers are busy with what is due

    async def _heartbeat(self, job_id: int, lost: asyncio.Event) -> None:
        """Renew the lease while the step runs; if another worker has taken the step over, say so."""
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                async with self.db.write() as session:
                    result = await session.execute(
                        update(MediaJob)
                        .where(MediaJob.id == job_id, MediaJob.status == "running", MediaJob.lease_owner == self.owner)
                        .values(lease_expires_at=utcnow() + self.lease)
                    )
            except Exception:  # noqa: BLE001 - a busy database: try again at the next beat
                log.warning("lease heartbeat failed", exc_info=True, extra={"job": job_id})
                continue
            if result.rowcount != 1:
                lost.set()
                log.warning("media step lease lost", extra={"job": job_id, "owner": self.owner})
                return

    async def run_next(self) -> str | None:
        """Run one due step. Returns "<video>:<step>:<outcome>" or None when nothing is due."""
        claimed = await self.claim()
        if claimed is None:
            return None
        video, job = claimed
        started = time.perf_counter()
        lost = asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat(job.id, lost))
        try:
            result = await self.run_step(video, job)
        except MediaRejected as exc:
            return await self._fail(video.id, job, exc.message, permanent=True, outcome="rejected")
        except Exception as exc:  # noqa: BLE001 - anything else may be transient: retry with backoff
            log.warning("media step failed", extra={"video": video.id, "step": job.step, "attempt": job.attempts,
                                                     "error": repr(exc)})
            permanent = job.attempts >= MAX_ATTEMPTS
            message = (f"Processing failed after {job.attempts} attempts ({type(exc).__name__}: {exc})"
                       if permanent else f"{type(exc).__name__}: {exc}")
            return await self._fail(video.id, job, message[:900], permanent=permanent,
                                    outcome="failed" if permanent else "retry")
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        seconds = round(time.perf_counter() - started, 3)
        async with self.db.write() as session:
            row = await session.get(MediaJob, job.id)
            if row is None:  # the video was deleted meanwhile
                return f"{video.id}:{job.step}:gone"
            # A step may record its own success in its last transaction (publish does, with the video going
            # ready): still ours then.
            finished_by_step = row.status == "succeeded" and row.lease_owner == self.owner
            if not self._holds(row) and not finished_by_step:  # our lease expired and another worker took over
                return f"{video.id}:{job.step}:lost"
            row.status = "succeeded"
            row.progress = 1.0
            row.error = None
            row.finished_at = utcnow()
            row.result = {**(result or {}), "seconds": seconds, "worker": self.owner}
            row.lease_owner = None
            row.lease_expires_at = None
            remaining = (await session.execute(
                select(MediaJob.id).where(and_(MediaJob.video_id == video.id, MediaJob.status != "succeeded",
                                               MediaJob.id != job.id)).limit(1)
            )).first()
        if remaining is None and self.on_ready is not None:
            await self.on_ready(video.id)
        return f"{video.id}:{job.step}:ok"

    def _holds(self, row: MediaJob) -> bool:
        return row.status == "running" and row.lease_owner == self.owner

    async def _fail(self, video_id: str, job: MediaJob, message: str, permanent: bool, outcome: str) -> str:
        async with self.db.write() as session:
            row = await session.get(MediaJob, job.id)
            if row is None:
                return f"{video_id}:{job.step}:gone"
            if not self._holds(row):
                return f"{video_id}:{job.step}:lost"
            row.error = message
            row.lease_owner = None
            row.lease_expires_at = None
            if permanent:
                row.status = "failed"
                row.finished_at = utcnow()
                video = await session.get(Video, video_id)
                if video is not None:
                    video.state = "failed"
                    video.failure_reason = message
            else:
                row.status = "pending"
                row.run_after = utcnow() + timedelta(seconds=BACKOFF_BASE_S * 2 ** max(job.attempts - 1, 0))
        return f"{video_id}:{job.step}:{outcome}"

    async def drain(self, max_seconds: float | None = None, max_steps: int | None = None) -> int:
        """Run due steps until none is left (or a budget runs out). Returns how many steps ran."""
        deadline = time.monotonic() + max_seconds if max_seconds else None
        steps = 0
        while (max_steps is None or steps < max_steps) and (deadline is None or time.monotonic() < deadline):
            if await self.run_next() is None:
                break
            steps += 1
        return steps

    async def work(self, stop: asyncio.Event, poll_s: float = 1.0) -> None:
        """The worker loop (``foryou worker``, or a task in ``foryou serve``): run steps until ``stop`` is set.

        A step already running when ``stop`` is set finishes first."""
        log.info("media worker started", extra={"owner": self.owner})
        while not stop.is_set():
            try:
                outcome = await self.run_next()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the worker
                log.exception("media worker: claiming a step failed")
                outcome = None
            if outcome is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll_s)
        log.info("media worker stopped", extra={"owner": self.owner})

    async def pending_count(self) -> int:
        async with self.db.read() as session:
            rows = (await session.execute(
                select(MediaJob.id).join(Video, Video.id == MediaJob.video_id)
                .where(Video.state == "processing", MediaJob.status.in_(("pending", "running")))
            )).all()
        return len(rows)
