"""The durable media job runner: claims due steps from ``media_jobs`` and runs them one at a time.

Each step of each video is a row. A worker claims the next due step (the lowest unfinished position of a
processing video) in a write transaction, runs it off the event loop, and records the outcome:
success moves the video on; ``MediaRejected`` fails it for good with a reason for the creator; anything else
is retried with exponential backoff. Steps are idempotent, so a step interrupted by a crash (``kill -9``) is
simply run again after restart: rows left ``running`` by a dead worker are reclaimed when their lease expires,
and at start-up of the only worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import and_, select, update

from app.db.engine import Database
from app.db.models import MediaJob, Video, utcnow
from media.errors import MediaRejected

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
BACKOFF_BASE_S = 5.0
LEASE = timedelta(minutes=30)

StepRunner = Callable[[Video, MediaJob], Awaitable[dict]]
Finisher = Callable[[str], Awaitable[None]]


class JobRunner:
    def __init__(self, db: Database, run_step: StepRunner, on_ready: Finisher | None = None) -> None:
        self.db = db
        self.run_step = run_step
        self.on_ready = on_ready

    async def reclaim_abandoned(self, everything: bool = False) -> int:
        """Put ``running`` rows back to ``pending``: all of them (at start of the only worker) or expired leases."""
        cutoff = utcnow() if everything else utcnow() - LEASE
        async with self.db.write() as session:
            result = await session.execute(
                update(MediaJob).where(MediaJob.status == "running", MediaJob.started_at <= cutoff)
                .values(status="pending", run_after=utcnow())
            )
        return result.rowcount or 0

    async def claim(self) -> tuple[Video, MediaJob] | None:
        """Atomically take the next due step whose earlier steps have all succeeded."""
        now = utcnow()
        async with self.db.write() as session:
            candidates = (await session.execute(
                select(MediaJob, Video).join(Video, Video.id == MediaJob.video_id)
                .where(Video.state == "processing", MediaJob.status == "pending", MediaJob.run_after <= now)
                .order_by(MediaJob.run_after, MediaJob.video_id, MediaJob.position)
                .limit(50)
            )).all()
            for job, video in candidates:
                blocking = (await session.execute(
                    select(MediaJob.id).where(MediaJob.video_id == job.video_id, MediaJob.position < job.position,
                                              MediaJob.status != "succeeded").limit(1)
                )).first()
                if blocking:
                    continue
                job.status = "running"
                job.started_at = now
                job.attempts += 1
                return video, job
        return None

    async def run_next(self) -> str | None:
        """Run one due step. Returns "<video>:<step>:<outcome>" or None when nothing is due."""
        claimed = await self.claim()
        if claimed is None:
            return None
        video, job = claimed
        started = time.perf_counter()
        try:
            result = await self.run_step(video, job)
        except MediaRejected as exc:
            await self._fail(video.id, job.id, exc.message, permanent=True)
            return f"{video.id}:{job.step}:rejected"
        except Exception as exc:  # noqa: BLE001 - anything else may be transient: retry with backoff
            log.warning("media step failed", extra={"video": video.id, "step": job.step, "attempt": job.attempts,
                                                     "error": repr(exc)})
            permanent = job.attempts >= MAX_ATTEMPTS
            message = (f"Processing failed after {job.attempts} attempts ({type(exc).__name__}: {exc})"
                       if permanent else f"{type(exc).__name__}: {exc}")
            await self._fail(video.id, job.id, message[:900], permanent=permanent, attempts=job.attempts)
            return f"{video.id}:{job.step}:{'failed' if permanent else 'retry'}"
        seconds = round(time.perf_counter() - started, 3)
        async with self.db.write() as session:
            row = await session.get(MediaJob, job.id)
            if row is None:  # the video was deleted meanwhile
                return f"{video.id}:{job.step}:gone"
            row.status = "succeeded"
            row.progress = 1.0
            row.error = None
            row.finished_at = utcnow()
            row.result = {**(result or {}), "seconds": seconds}
            remaining = (await session.execute(
                select(MediaJob.id).where(and_(MediaJob.video_id == video.id, MediaJob.status != "succeeded",
                                               MediaJob.id != job.id)).limit(1)
            )).first()
        if remaining is None and self.on_ready is not None:
            await self.on_ready(video.id)
        return f"{video.id}:{job.step}:ok"

    async def _fail(self, video_id: str, job_id: int, message: str, permanent: bool, attempts: int = 0) -> None:
        async with self.db.write() as session:
            row = await session.get(MediaJob, job_id)
            if row is None:
                return
            row.error = message
            if permanent:
                row.status = "failed"
                row.finished_at = utcnow()
                video = await session.get(Video, video_id)
                if video is not None:
                    video.state = "failed"
                    video.failure_reason = message
            else:
                row.status = "pending"
                row.run_after = utcnow() + timedelta(seconds=BACKOFF_BASE_S * 2 ** max(attempts - 1, 0))

    async def drain(self, max_seconds: float | None = None, max_steps: int | None = None) -> int:
        """Run due steps until none is left (or a budget runs out). Returns how many steps ran."""
        deadline = time.monotonic() + max_seconds if max_seconds else None
        steps = 0
        while (max_steps is None or steps < max_steps) and (deadline is None or time.monotonic() < deadline):
            if await self.run_next() is None:
                break
            steps += 1
        return steps

    async def pending_count(self) -> int:
        async with self.db.read() as session:
            rows = (await session.execute(
                select(MediaJob.id).join(Video, Video.id == MediaJob.video_id)
                .where(Video.state == "processing", MediaJob.status.in_(("pending", "running")))
            )).all()
        return len(rows)
