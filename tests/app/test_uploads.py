"""The upload endpoint: streaming, size limit, specific messages for bad files, and nothing left behind."""

import hashlib
import subprocess

import pytest
from sqlalchemy import func, select

from app.db.models import MediaJob, Video
from media.ffmpeg import default_tools
from tests.app.helpers import run, services
from tests.app.test_accounts import signup
from tests.conftest import csrf_of

pytestmark = pytest.mark.both_databases


def ffmpeg(*args: str) -> None:
    subprocess.run([default_tools().ffmpeg, "-hide_banner", "-loglevel", "error", "-y", *args], check=True,
                   timeout=120)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    good = folder / "good.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15:duration=2", "-f", "lavfi",
           "-i", "sine=frequency=440:duration=2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
           "-shortest", str(good))
    audio_only = folder / "audio.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac", str(audio_only))
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    playlist = folder / "playlist.mp4"
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
    text = folder / "notes.mp4"
    text.write_text("this is not a video, just some text " * 50)
    bomb = folder / "bomb.mp4"  # a tiny file whose one frame is 16000 x 16000 pixels
    ffmpeg("-f", "lavfi", "-i", "color=black:s=16000x16000:r=1", "-frames:v", "1", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(bomb))
    return {"good": good, "audio_only": audio_only, "truncated": truncated, "playlist": playlist, "text": text,
            "bomb": bomb, "empty": None}


def upload(client, body: bytes, caption="hello #World #cats", csrf=None):
    csrf = csrf or csrf_of(client)
    return client.post("/api/uploads", params={"caption": caption, "topic": "Pets"}, content=body,
                       headers={"x-csrf-token": csrf, "content-type": "video/mp4"})


def leftovers(client):
    settings = services(client).settings

    async def _count():
        async with services(client).db.read() as session:
            videos = (await session.execute(select(func.count()).select_from(Video))).scalar_one()
            jobs = (await session.execute(select(func.count()).select_from(MediaJob))).scalar_one()
        return videos, jobs

    files = [p for p in settings.media_dir.rglob("*") if p.is_file()] + list(settings.uploads_tmp_dir.glob("*"))
    return (*run(client, _count()), files)


def test_a_guest_cannot_upload(client, clips):
    response = upload(client, clips["good"].read_bytes())
    assert response.status_code == 401
    assert leftovers(client) == (0, 0, [])


def test_a_good_upload_stores_the_video_and_queues_its_pipeline(client, clips):
    signup(client, username="maker")
    response = upload(client, clips["good"].read_bytes())
    assert response.status_code == 201, response.text
    body = response.json()
    videos, jobs, files = leftovers(client)
    assert (videos, jobs) == (1, len(services(client).videos.pipeline_steps))
    assert [f.name for f in files] == ["original"]

    async def _video():
        async with services(client).db.read() as session:
            return await session.get(Video, body["id"])

    video = run(client, _video())
    assert video.hashtags == ["world", "cats"] and video.topic == "pets" and video.state == "processing"
    assert 1.5 < video.duration < 2.5 and (video.width, video.height) == (320, 240)
    status = client.get(body["status_url"], headers={"accept": "text/html"})
    assert status.status_code == 200 and "Checking the file" in status.text


@pytest.mark.parametrize(
    ("name", "code", "words"),
    [
        ("empty", "empty_file", "empty"),
        ("text", "not_a_video", "video"),
        ("playlist", "playlist", "playlist"),
        ("truncated", "truncated", "incomplete"),
        ("audio_only", "audio_only", "no picture"),
        ("bomb", "too_many_pixels", "too large"),
    ],
)
def test_bad_files_get_a_specific_message_and_leave_nothing(client, clips, name, code, words):
    signup(client, username="maker")
    body = b"" if clips[name] is None else clips[name].read_bytes()
    response = upload(client, body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert words in response.json()["error"].lower()
    assert leftovers(client) == (0, 0, [])


def test_oversized_upload_is_refused_with_413_and_leaves_nothing(client, settings, clips):
    signup(client, username="maker")
    big = b"\0" * (services(client).settings.max_upload_bytes + 1)
    response = upload(client, big)
    assert response.status_code == 413
    assert "limit" in response.json()["error"]
    assert leftovers(client) == (0, 0, [])


def logout(client):
    return client.post("/logout", headers={"hx-request": "true", "x-csrf-token": csrf_of(client)})


def video_rows(client):
    async def _rows():
        async with services(client).db.read() as session:
            return list((await session.execute(select(Video.id, Video.creator_id, Video.content_hash)
                                               .order_by(Video.created_at))).all())
    return run(client, _rows())


def test_an_exact_reupload_by_the_same_creator_is_refused_with_a_link_and_leaves_nothing(client, clips):
    signup(client, username="maker")
    data = clips["good"].read_bytes()
    first = upload(client, data)
    assert first.status_code == 201, first.text
    before = leftovers(client)
    (row,) = video_rows(client)
    assert row.content_hash == hashlib.sha256(data).hexdigest()  # computed while streaming, stored on the row

    again = upload(client, data, caption="same file, new caption")
    assert again.status_code == 409, again.text
    body = again.json()
    assert body["code"] == "duplicate" and "already uploaded" in body["error"]
    first_id = first.json()["id"]
    # Still processing: the link goes to its status page (its /v/ page exists once it is published).
    assert body["existing_id"] == first_id and body["existing_url"] == f"/videos/{first_id}/status"
    assert leftovers(client) == before  # no second row, no job rows, no file (the temporary one is gone too)

    async def _publish():
        async with services(client).db.write() as session:
            (await session.get(Video, first_id)).state = "ready"
    run(client, _publish())
    assert upload(client, data).json()["existing_url"] == f"/v/{first_id}"
    assert leftovers(client) == before

    # One byte more is another file: a new video.
    assert upload(client, data + b"\0" * 16).status_code == 201


def test_another_creator_may_upload_the_same_bytes(client, clips):
    data = clips["good"].read_bytes()
    signup(client, username="maker")
    assert upload(client, data).status_code == 201
    logout(client)
    signup(client, username="remixer")
    second = upload(client, data)
    assert second.status_code == 201, second.text
    rows = video_rows(client)
    assert len(rows) == 2 and rows[0].content_hash == rows[1].content_hash
    assert rows[0].creator_id != rows[1].creator_id


def test_two_identical_uploads_at_once_leave_one_video(client, clips, monkeypatch):
    """The early check passed for both (a race): the unique index refuses the second row, which is cleaned up."""
    signup(client, username="maker")
    data = clips["good"].read_bytes()
    assert upload(client, data).status_code == 201
    videos = services(client).videos
    real = videos._refuse_duplicate
    calls = []

    async def late_check(creator_id, content_hash):
        calls.append(content_hash)
        if len(calls) > 1:  # only the check after the insert failed sees the other row
            await real(creator_id, content_hash)

    monkeypatch.setattr(videos, "_refuse_duplicate", late_check)
    before = leftovers(client)
    again = upload(client, data)
    assert again.status_code == 409, again.text
    assert len(calls) == 2
    assert leftovers(client) == before
