"""The in-process worker drains the media queue by itself (periodic jobs: tests/app/test_process_roles.py)."""

from __future__ import annotations

import time

import pytest
from litestar.testing import TestClient

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
