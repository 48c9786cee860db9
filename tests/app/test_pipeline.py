"""The media pipeline through the app: upload to ready with real Whisper, crash and resume, Range serving."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import lancedb
import pytest
from litestar.testing import TestClient

from app.domain.videos.pipeline import PIPELINE_STEPS
from media import ffmpeg as ff
from tests.app.helpers import run, services
from tests.app.test_accounts import signup
from tests.conftest import csrf_of, make_settings
from tests.media.helpers import FIXTURES, make_video

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def speech_clip(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("speech")
    return make_video(ff.locate(), folder / "speech.mp4", size="320x240", duration=5.25,
                      audio_file=FIXTURES / "speech_slt.wav")


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """Real Whisper tiny.en (converted from the PyPI package) and sentence encoder; a tiny random CLIP."""
    from media.models import ClipEmbedder, ModelRegistry, ModelSettings

    models = ModelRegistry(ModelSettings(models_dir=str(tmp_path_factory.mktemp("models"))))
    models.set("clip", ClipEmbedder.random_for_tests())
    return models


def test_upload_to_ready_with_transcript_captions_vectors_and_jobs(tmp_path, speech_clip, registry):
    from app.server.app import create_app

    settings = make_settings(tmp_path / "data")
    with TestClient(create_app(settings, models=registry)) as client:
        signup(client, username="baker")
        response = client.post("/api/uploads", params={"caption": "Baking day #cookies #Kitchen"},
                               content=speech_clip.read_bytes(),
                               headers={"x-csrf-token": csrf_of(client), "content-type": "video/mp4"})
        assert response.status_code == 201, response.text
        video_id = response.json()["id"]
        steps_run = run(client, services(client).jobs.drain())
        assert steps_run == len(services(client).videos.pipeline_steps)

        status = client.get(f"/videos/{video_id}/status", headers={"accept": "text/html"})
        assert 'data-state="ready"' in status.text

        captions = client.get(f"/media/{video_id}/captions.vtt")
        assert captions.status_code == 200 and captions.text.startswith("WEBVTT")
        assert "chocolate" in captions.text.lower()

        video_file = client.get(f"/media/{video_id}/video.mp4")
        assert video_file.status_code == 200 and video_file.headers["content-type"] == "video/mp4"
        assert client.get(f"/media/{video_id}/poster.jpg").headers["content-type"] == "image/jpeg"

    db = sqlite3.connect(settings.data_dir / "foryou.db")
    state, transcript, language, metadata = db.execute(
        "SELECT state, transcript, language, metadata FROM videos WHERE id = ?", (video_id,)).fetchone()
    assert state == "ready" and language == "en"
    for keyword in ("chocolate", "cookies", "strawberries", "vanilla"):
        assert keyword in transcript.lower()
    models = json.loads(metadata)["models"]
    assert models["visual"] == "clip:random-test" and models["visual_random"] is True
    statuses = db.execute("SELECT step, status, attempts FROM media_jobs WHERE video_id = ?", (video_id,)).fetchall()
    assert {status for _, status, _ in statuses} == {"succeeded"}
    assert db.execute("SELECT COUNT(*) FROM events WHERE event_type = 'content_upload'").fetchone() == (1,)
    # Its speech founded a sound of its own, named after the uploader, with its landmarks indexed.
    sound_id, how = db.execute("SELECT sound_id, how FROM video_sounds WHERE video_id = ?", (video_id,)).fetchone()
    assert how == "original" and json.loads(metadata)["audio_id"] == sound_id
    title, original, landmarks = db.execute("SELECT title, original_video_id, landmarks FROM sounds").fetchone()
    assert title == "original sound - baker" and original == video_id and landmarks > 0

    index = lancedb.connect(str(settings.lancedb_dir))
    videos = index.open_table("videos").to_arrow().to_pylist()
    assert [row["id"] for row in videos] == [video_id]
    assert videos[0]["content_model"] == "clip:random-test" and len(videos[0]["vector"]) > 0
    assert index.open_table("transcript_segments").count_rows() >= 1


def test_range_requests_return_206_with_the_right_bytes(tmp_path, speech_clip, registry):
    from app.server.app import create_app

    settings = make_settings(tmp_path / "data")
    with TestClient(create_app(settings, models=registry)) as client:
        signup(client, username="ranger")
        video_id = client.post("/api/uploads", content=speech_clip.read_bytes(),
                               headers={"x-csrf-token": csrf_of(client)}).json()["id"]
        run(client, services(client).jobs.drain())
        whole = client.get(f"/media/{video_id}/video.mp4").content
        part = client.get(f"/media/{video_id}/video.mp4", headers={"range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-199/{len(whole)}"
        assert part.content == whole[100:200]
        tail = client.get(f"/media/{video_id}/video.mp4", headers={"range": "bytes=-50"})
        assert tail.status_code == 206 and tail.content == whole[-50:]
        open_ended = client.get(f"/media/{video_id}/video.mp4", headers={"range": f"bytes={len(whole) - 10}-"})
        assert open_ended.content == whole[-10:]
        beyond = client.get(f"/media/{video_id}/video.mp4", headers={"range": f"bytes={len(whole)}-"})
        assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(whole)}"


def _cli(data_dir: Path, *args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "FORYOU_DATA_DIR": str(data_dir), "FORYOU_ALLOW_MODEL_DOWNLOADS": "false",
           "FORYOU_LOG_JSON": "false", "FORYOU_JOB_LEASE_S": "2"}
    return subprocess.Popen([sys.executable, "-m", "app", *args], cwd=ROOT, env=env, **popen)


def test_a_worker_killed_mid_step_resumes_after_restart_with_nothing_lost_or_duplicated(tmp_path, speech_clip):
    data_dir = tmp_path / "data"
    queued = _cli(data_dir, "upload", str(speech_clip), "--user", "crashy", "--caption", "Crash test #resume",
                  stdout=subprocess.PIPE)
    video_id = json.loads(queued.communicate(timeout=180)[0])["video_id"]

    worker = _cli(data_dir, "jobs", "run", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db_path = data_dir / "foryou.db"
    deadline = time.monotonic() + 180
    killed_during = None
    while time.monotonic() < deadline and worker.poll() is None:
        with sqlite3.connect(db_path, timeout=10) as db:
            row = db.execute("SELECT step FROM media_jobs WHERE video_id = ? AND status = 'running'",
                             (video_id,)).fetchone()
        if row and row[0] in ("transcript", "text_embedding", "transcode"):
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
            killed_during = row[0]
            break
        time.sleep(0.05)
    assert killed_during, "the worker finished before it could be killed mid-step"
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT state FROM videos WHERE id = ?", (video_id,)).fetchone() == ("processing",)

    time.sleep(2.5)  # the dead worker's lease expires: only then may the step be taken over
    restarted = _cli(data_dir, "jobs", "run", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    restarted.communicate(timeout=300)
    assert restarted.returncode == 0

    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT state FROM videos WHERE id = ?", (video_id,)).fetchone() == ("ready",)
        jobs = db.execute("SELECT step, status FROM media_jobs WHERE video_id = ?", (video_id,)).fetchall()
        assert sorted(step for step, _ in jobs) == sorted(PIPELINE_STEPS) and {s for _, s in jobs} == {"succeeded"}
        assert db.execute("SELECT COUNT(*) FROM events WHERE event_type = 'content_upload'").fetchone() == (1,)
        retried = db.execute("SELECT attempts FROM media_jobs WHERE video_id = ? AND step = ?",
                             (video_id, killed_during)).fetchone()[0]
        assert retried == 2  # the killed attempt, then the one that finished
    index = lancedb.connect(str(data_dir / "lancedb"))
    assert index.open_table("videos").count_rows() == 1
    segments = index.open_table("transcript_segments").to_arrow().to_pylist()
    assert len({row["id"] for row in segments}) == len(segments) >= 1
    leftovers = [p.name for p in (data_dir / "media" / video_id).rglob("*") if ".tmp-" in p.name]
    assert leftovers == []
