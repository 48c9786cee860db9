"""The in-process scheduler: it drains the media queue by itself and runs the recommender's periodic jobs."""

from __future__ import annotations

import asyncio
import time

import pytest
from litestar.testing import TestClient

from app.server.scheduler import ScheduledJob, Scheduler
from tests.app.helpers import run, services
from tests.app.test_accounts import signup
from tests.app.test_pipeline import registry, speech_clip  # noqa: F401  (module fixtures)
from tests.conftest import csrf_of, make_settings

pytestmark = pytest.mark.slow


def test_an_upload_becomes_ready_with_nobody_draining_the_queue(tmp_path, speech_clip, registry):  # noqa: F811
    from app.server.app import create_app

    with TestClient(create_app(make_settings(tmp_path / "data", run_scheduler=True), models=registry)) as client:
        signup(client, username="baker")
        response = client.post("/api/uploads", params={"caption": "Scheduled #cookies"},
                               content=speech_clip.read_bytes(),
                               headers={"x-csrf-token": csrf_of(client), "content-type": "video/mp4"})
        video_id = response.json()["id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = client.get(f"/videos/{video_id}/status", headers={"accept": "text/html"}).text
            if 'data-state="ready"' in status or 'data-state="failed"' in status:
                break
            time.sleep(0.5)
        assert 'data-state="ready"' in status, "the scheduler's media tick never finished the video"


def test_the_recommender_jobs_run_on_their_schedule(tmp_path):
    """The app's own job table, driven by APScheduler at a short interval: every job runs, none overlaps."""
    from app.server.app import create_app

    with TestClient(create_app(make_settings(tmp_path / "data"))) as client:
        svc = services(client)
        table = [job for job in svc.scheduled_jobs() if job.name.startswith("recommender:")]
        assert table, "the recommender contributes periodic jobs"
        runs: dict[str, int] = {}

        def counted(job: ScheduledJob) -> ScheduledJob:
            async def run_and_count() -> object:
                runs[job.name] = runs.get(job.name, 0) + 1
                return await job.run()

            return ScheduledJob(job.name, 0.3, run_and_count, job.description)

        async def drive() -> None:
            scheduler = Scheduler([counted(job) for job in table])
            scheduler.start()
            try:
                await asyncio.sleep(2.0)
            finally:
                scheduler.shutdown()

        run(client, drive())
        assert set(runs) == {job.name for job in table}, runs
        assert all(count >= 2 for count in runs.values()), runs
        done = svc.recommender.engine.last_job_runs()
        assert {name.removeprefix("recommender:") for name in runs} <= set(done), done
