"""The in-process scheduler: it drains the media queue by itself and runs the recommender's periodic jobs."""

from __future__ import annotations

import time

import pytest
from litestar.testing import TestClient

from tests.app.helpers import services
from tests.app.test_accounts import signup
from tests.app.test_pipeline import registry, speech_clip  # noqa: F401  (module fixtures)
from tests.conftest import csrf_of, make_settings

pytestmark = pytest.mark.slow


def test_an_upload_becomes_ready_with_nobody_draining_the_queue(tmp_path, speech_clip, registry):  # noqa: F811
    from app.server.app import create_app

    settings = make_settings(tmp_path / "data", run_worker=True, run_scheduler=True)
    with TestClient(create_app(settings, models=registry)) as client:
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
    """The app's own scheduler, with every job's interval set short: each recommender job runs by itself, and
    the app shuts down cleanly with jobs still running (this used to hang in the loop's final cancellation)."""
    from app.server.app import create_app

    with TestClient(create_app(make_settings(tmp_path / "data"))) as probe:
        every = [job.name for job in services(probe).scheduled_jobs()]
    names = [n for n in every if n.startswith("recommender:")]
    assert len(names) >= 7 and any(n.endswith("_training") for n in names), every
    settings = make_settings(tmp_path / "data", run_scheduler=True, job_intervals=tuple(f"{n}=1" for n in names))
    with TestClient(create_app(settings)) as client:
        engine = services(client).recommender.engine
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = engine.last_job_runs()
            if {name.removeprefix("recommender:") for name in names} <= set(done):
                break
            time.sleep(0.25)
        assert {name.removeprefix("recommender:") for name in names} <= set(done), done
