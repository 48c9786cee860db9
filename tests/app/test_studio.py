"""The creator's studio through its pages: list with states, failure reasons, retry, and delete for good."""

from __future__ import annotations

import sqlite3

import pytest
from litestar.testing import TestClient
from sqlalchemy import update

from app.db.models import MediaJob, Video
from tests.app.helpers import run, services
from tests.app.test_accounts import signup
from tests.app.test_pipeline import registry, speech_clip  # noqa: F401  (module fixtures)
from tests.conftest import csrf_of, make_settings

pytestmark = pytest.mark.slow


def upload(client: TestClient, clip, caption: str, tail: bytes = b"") -> str:  # noqa: ANN001
    """``tail``: bytes after the file's end (players ignore them), so the same clip can be uploaded twice (an
    exact re-upload by the same creator is refused)."""
    response = client.post("/api/uploads", params={"caption": caption}, content=clip.read_bytes() + tail,
                           headers={"x-csrf-token": csrf_of(client), "content-type": "video/mp4"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def fail_at_transcode(client: TestClient, video_id: str, reason: str) -> None:
    """What the job runner leaves after a step has used up its attempts."""
    async def _fail() -> None:
        async with services(client).db.write() as session:
            await session.execute(update(MediaJob).where(MediaJob.video_id == video_id,
                                                         MediaJob.step != "probe")
                                  .values(status="pending"))
            await session.execute(update(MediaJob).where(MediaJob.video_id == video_id,
                                                         MediaJob.step == "transcode")
                                  .values(status="failed", error=reason, attempts=3))
            await session.execute(update(Video).where(Video.id == video_id)
                                  .values(state="failed", failure_reason=reason))

    run(client, _fail())


def test_studio_lists_states_retries_a_failure_and_deletes_everything(tmp_path, speech_clip, registry):  # noqa: F811
    from app.server.app import create_app

    settings = make_settings(tmp_path / "data")
    with TestClient(create_app(settings, models=registry)) as client:
        assert client.get("/studio", follow_redirects=False).status_code in (302, 303)  # guests log in first
        signup(client, username="maker")
        kept = upload(client, speech_clip, "Kept #one")
        doomed = upload(client, speech_clip, "Doomed #two", tail=b"\0" * 16)
        run(client, services(client).jobs.drain())
        studio = client.get("/studio").text
        assert studio.count('data-state="ready"') == 2 and "Kept" in studio and "Doomed" in studio

        # A failure shows its reason and a Retry button; retrying from the studio runs the pipeline again.
        fail_at_transcode(client, kept, "ffmpeg ran out of time")
        studio = client.get("/studio").text
        item = studio[studio.index(f'id="studio-{kept}"'):]
        assert 'data-state="failed"' in studio and "ffmpeg ran out of time" in item[:1500]
        assert f'hx-post="/videos/{kept}/retry?view=studio"' in studio
        retried = client.post(f"/videos/{kept}/retry?view=studio", headers={"x-csrf-token": csrf_of(client),
                                                                              "hx-request": "true"})
        assert retried.status_code in (200, 201) and f'id="studio-{kept}"' in retried.text
        assert 'data-state="processing"' in retried.text and "ffmpeg ran out of time" not in retried.text
        assert run(client, services(client).jobs.drain()) > 0
        assert client.get("/studio").text.count('data-state="ready"') == 2

        # Delete: the rows, the files, the vectors and the recommender's item are gone; the other video stays.
        folder = settings.media_dir / doomed
        assert folder.is_dir() and services(client).vectors.count(where=f"id = '{doomed}'") == 1
        engine = services(client).recommender.engine
        assert engine.inspect_item(doomed) is not None
        gone = client.delete(f"/videos/{doomed}", headers={"x-csrf-token": csrf_of(client), "hx-request": "true"})
        assert gone.status_code == 200 and gone.headers["hx-trigger"] == "video-deleted"
        assert not folder.exists() and (settings.media_dir / kept).is_dir()
        assert services(client).vectors.count(where=f"id = '{doomed}'") == 0
        assert services(client).vectors.count(name="segments", where=f"video_id = '{doomed}'") == 0
        assert services(client).vectors.count(where=f"id = '{kept}'") == 1
        assert engine.inspect_item(doomed) is None and engine.inspect_item(kept) is not None
        assert client.get(f"/v/{doomed}").status_code == 404
        assert f'id="studio-{doomed}"' not in client.get("/studio").text

        # Someone else's video is not theirs to delete or retry.
        client.post("/logout", data={"csrf_token": csrf_of(client)})
        signup(client, username="intruder")
        assert client.delete(f"/videos/{kept}", headers={"x-csrf-token": csrf_of(client)}).status_code in (403, 404)

    db = sqlite3.connect(settings.data_dir / "foryou.db")
    for table in ("videos", "media_jobs"):
        assert db.execute(f"SELECT COUNT(*) FROM {table} WHERE {'id' if table == 'videos' else 'video_id'} = ?",
                          (doomed,)).fetchone() == (0,), table
    assert db.execute("SELECT state FROM videos WHERE id = ?", (kept,)).fetchone() == ("ready",)
