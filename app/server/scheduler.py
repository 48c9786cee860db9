"""The one table of scheduled jobs, driven by APScheduler in the app process.

The scheduler only ticks: each job's durable state lives in the database (media jobs) or is recomputed
from it (recommender jobs), so a restart loses nothing. Every job has ``max_instances=1`` and
``coalesce=True``: a slow run is never overlapped by the next one, and missed runs collapse into one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    every_s: float
    run: Callable[[], Awaitable[object]]
    description: str = ""


class Scheduler:
    def __init__(self, jobs: list[ScheduledJob]) -> None:
        self.jobs = jobs
        self._scheduler: AsyncIOScheduler | None = None

    def start(self) -> None:
        self._scheduler = AsyncIOScheduler(job_defaults={"max_instances": 1, "coalesce": True,
                                                         "misfire_grace_time": 60})
        for job in self.jobs:
            self._scheduler.add_job(self._guarded(job), "interval", seconds=job.every_s, id=job.name,
                                    name=job.name)
        self._scheduler.start()
        log.info("scheduler started", extra={"jobs": [job.name for job in self.jobs]})

    def shutdown(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None

    @staticmethod
    def _guarded(job: ScheduledJob) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            try:
                result = await job.run()
                if result:
                    log.info("job finished", extra={"job": job.name, "result": result})
            except Exception:  # noqa: BLE001 - one failing run must not stop the schedule
                log.exception("job failed", extra={"job": job.name})

        return run
