"""The one table of periodic jobs, driven by APScheduler, run once per interval across every process.

The scheduler only ticks: each job's durable state lives in the database or is recomputed from it, so a
restart loses nothing. Any number of processes may run a scheduler (``foryou scheduler``, or the one inside
``foryou serve`` on SQLite): each ticks every job several times per interval, and a tick runs the job only if it
wins the job's lease row (app.db.leases), which is granted when nobody holds it and its last start is at least
one interval old. The holder renews the lease while the job runs, so a slow run is never overlapped, and a
scheduler that dies mid-run hands the job to another once its lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.db.leases import PeriodicLeases

log = logging.getLogger(__name__)

MAX_TICK_S = 15.0


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    every_s: float
    run: Callable[[], Awaitable[object]]
    description: str = ""


def tick_seconds(every_s: float) -> float:
    """How often a scheduler asks for a job's lease: often enough that the fleet keeps to the interval."""
    return max(0.25, min(every_s / 4, MAX_TICK_S))


class Scheduler:
    def __init__(self, jobs: list[ScheduledJob], leases: PeriodicLeases) -> None:
        self.jobs = jobs
        self.leases = leases
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task] = set()
        self._stopping = False

    async def start(self) -> None:
        await self.leases.ensure([job.name for job in self.jobs])
        self._scheduler = AsyncIOScheduler(job_defaults={"max_instances": 1, "coalesce": True,
                                                         "misfire_grace_time": 60})
        for job in self.jobs:
            self._scheduler.add_job(self.run_if_due, "interval", args=[job], seconds=tick_seconds(job.every_s),
                                    id=job.name, name=job.name)
        self._scheduler.start()
        log.info("scheduler started", extra={"jobs": [job.name for job in self.jobs], "owner": self.leases.owner})

    async def stop(self, grace_s: float = 30.0) -> None:
        """No new runs; let running jobs finish within the grace, then cancel what is left and wait for it.

        APScheduler's own shutdown cancels running coroutine jobs and returns at once: the app then disposed the
        database under them, and the event loop's final cancellation hung closing their connections."""
        self._stopping = True
        if self._scheduler is not None:
            self._scheduler.pause()
        running = set(self._running)
        late: set[asyncio.Task] = set()
        if running:
            _, late = await asyncio.wait(running, timeout=grace_s)
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        for task in late:
            log.warning("job cancelled at shutdown", extra={"job": task.get_name()})
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=5.0)

    async def run_if_due(self, job: ScheduledJob) -> bool:
        """Run the job now if this process wins its lease; one failing run must not stop the schedule."""
        if self._stopping:
            return False
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            return await self._run_if_due(job)
        finally:
            self._running.discard(task)

    async def _run_if_due(self, job: ScheduledJob) -> bool:
        try:
            if not await self.leases.try_start(job.name, job.every_s):
                return False
        except Exception:  # noqa: BLE001 - a busy database: the next tick asks again
            log.warning("job lease request failed", exc_info=True, extra={"job": job.name})
            return False
        renewing = asyncio.create_task(self._renew(job.name))
        error = None
        try:
            result = await job.run()
            if result:
                log.info("job finished", extra={"job": job.name, "result": result})
        except Exception as exc:  # noqa: BLE001
            error = f"{type(exc).__name__}: {exc}"
            log.exception("job failed", extra={"job": job.name})
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
        try:
            await self.leases.finish(job.name, error)
        except Exception:  # noqa: BLE001 - the lease expires on its own
            log.warning("job lease release failed", exc_info=True, extra={"job": job.name})
        return True

    async def _renew(self, name: str) -> None:
        while True:
            await asyncio.sleep(self.leases.lease.total_seconds() / 4)
            try:
                if not await self.leases.renew(name):
                    log.warning("job lease lost while running", extra={"job": name})
                    return
            except Exception:  # noqa: BLE001
                log.warning("job lease renewal failed", exc_info=True, extra={"job": name})
