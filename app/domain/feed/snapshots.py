"""Periodic-job outputs published as versioned snapshots: the scheduler computes, every web replica loads.

A run of a recommender job in the process that runs the schedule writes its outputs (bytes from
``recommender.published``) as a new row of ``recommender_snapshots`` and announces the version on the
replication stream; a replica hearing of it (or starting up) loads the newest version of each job instead of
running the job itself. Versions only grow, so a late or repeated announcement never rolls a replica back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import delete, func, select

from app.db.engine import Database
from app.db.models import RecommenderSnapshot
from app.domain.feed.recommender import RecommenderService
from recommender import JOBS

log = logging.getLogger(__name__)

KEEP_PER_JOB = 3  # older versions are pruned (a replica only ever loads the newest)


class JobSnapshots:
    def __init__(self, db: Database, recommender: RecommenderService, source: str,
                 announce: Callable[[str, int], None] | None = None) -> None:
        self.db = db
        self.recommender = recommender
        self.source = source
        self.announce = announce
        self.loaded: dict[str, int] = {}  # job -> newest version this process holds

    async def publish(self, job: str, summary: dict) -> int | None:
        """After a job ran here: store its outputs as the next version and tell the replicas."""
        engine = self.recommender.engine
        blob = await asyncio.to_thread(engine.export_job_outputs, job) if engine is not None else None
        if blob is None:
            return None
        async with self.db.write() as session:
            row = RecommenderSnapshot(job=job, source=self.source, size_bytes=len(blob), blob=blob,
                                      summary={k: v for k, v in summary.items() if k in ("at", "seconds")})
            session.add(row)
            await session.flush()
            version = int(row.version)
            await session.execute(delete(RecommenderSnapshot).where(
                RecommenderSnapshot.job == job, RecommenderSnapshot.version <= version - KEEP_PER_JOB))
        self.loaded[job] = version
        if self.announce is not None:
            self.announce(job, version)
        log.info("job outputs published", extra={"job": job, "version": version, "bytes": len(blob)})
        return version

    async def load(self, job: str, version: int | None = None) -> dict | None:
        """Load the newest snapshot of ``job`` if it is newer than what this process holds (None: nothing to do)."""
        if version is not None and version <= self.loaded.get(job, 0):
            return None
        async with self.db.read() as session:
            row = (await session.execute(
                select(RecommenderSnapshot).where(RecommenderSnapshot.job == job)
                .order_by(RecommenderSnapshot.version.desc()).limit(1)
            )).scalar_one_or_none()
        if row is None or row.version <= self.loaded.get(job, 0) or self.recommender.engine is None:
            return None
        result = await asyncio.to_thread(self.recommender.engine.load_job_outputs, job, bytes(row.blob))
        self.loaded[job] = row.version
        log.info("job outputs loaded", extra={"job": job, "version": row.version, "from": row.source, **result})
        return {"job": job, "version": row.version, **result}

    async def load_all(self) -> list[dict]:
        """At start-up: the newest published outputs of every job, in the jobs' table order."""
        loaded = []
        for job in JOBS:
            try:
                result = await self.load(job)
            except (ValueError, KeyError, OSError):
                log.exception("unreadable snapshot skipped", extra={"job": job})
                continue
            if result is not None:
                loaded.append(result)
        return loaded

    async def versions(self) -> dict[str, int]:
        """The newest published version of each job (for status pages and tests)."""
        async with self.db.read() as session:
            rows = (await session.execute(select(RecommenderSnapshot.job, func.max(RecommenderSnapshot.version))
                                          .group_by(RecommenderSnapshot.job))).all()
        return {job: int(version) for job, version in rows}
