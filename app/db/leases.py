"""Leases: how several processes share one database's background work without doing anything twice.

A lease is a claim with an owner and an expiry. The owner renews it (a heartbeat) while it works; a process
that dies stops renewing, and only then may another take the work over. Claims are conditional ``UPDATE``s
(``... WHERE owner IS NULL OR expires_at < now``): on SQLite inside ``BEGIN IMMEDIATE`` (one writer at a
time), on PostgreSQL guarded by row locks, so exactly one claimant's update matches.

Media steps carry their lease on their own row (``media_jobs``, app.domain.videos.jobs); each periodic job has
a row in ``job_leases`` (used by app.server.scheduler), which also records when it last started, so that
across every scheduler of a deployment a job runs once per interval.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from app.db.engine import Database
from app.db.models import JobLease, utcnow


def process_owner() -> str:
    """This process's name on the leases it holds: host, pid (to find it) and a random part (pids recycle)."""
    return f"{socket.gethostname()[:48]}:{os.getpid()}:{secrets.token_hex(4)}"


class PeriodicLeases:
    """The ``job_leases`` table: start a periodic job only when it is due and nobody holds it."""

    def __init__(self, db: Database, owner: str, lease_s: float) -> None:
        self.db = db
        self.owner = owner
        self.lease = timedelta(seconds=lease_s)

    async def ensure(self, names: list[str]) -> None:
        """One row per job, created by whichever process gets there first, as if the job had just run: a job
        first runs one interval after the deployment first started, and restarts never reset its schedule."""
        async with self.db.read() as session:
            known = set((await session.execute(select(JobLease.name).where(JobLease.name.in_(names)))).scalars())
        for name in names:
            if name in known:
                continue
            try:
                async with self.db.write() as session:
                    session.add(JobLease(name=name, last_started_at=utcnow()))
            except IntegrityError:  # another process inserted it meanwhile
                pass

    async def try_start(self, name: str, every_s: float) -> bool:
        """Take the job's lease if it is free (or expired) and its last start is at least ``every_s`` ago."""
        now = utcnow()
        async with self.db.write() as session:
            result = await session.execute(
                update(JobLease)
                .where(JobLease.name == name,
                       or_(JobLease.owner.is_(None), JobLease.expires_at.is_(None), JobLease.expires_at < now),
                       or_(JobLease.last_started_at.is_(None),
                           JobLease.last_started_at <= now - timedelta(seconds=every_s)))
                .values(owner=self.owner, expires_at=now + self.lease, last_started_at=now,
                        runs=JobLease.runs + 1)
            )
        return result.rowcount == 1

    async def renew(self, name: str) -> bool:
        async with self.db.write() as session:
            result = await session.execute(
                update(JobLease).where(JobLease.name == name, JobLease.owner == self.owner)
                .values(expires_at=utcnow() + self.lease)
            )
        return result.rowcount == 1

    async def finish(self, name: str, error: str | None = None) -> None:
        async with self.db.write() as session:
            await session.execute(
                update(JobLease).where(JobLease.name == name, JobLease.owner == self.owner)
                .values(owner=None, expires_at=None, last_finished_at=utcnow(),
                        last_error=error[:500] if error else None)
            )
