"""Media and LanceDB on S3-compatible object storage, against moto's standalone S3 server started here.

The web process and the worker have separate data dirs (separate machines as far as files go) and share only
the database and the bucket: the worker pulls the original from the store, pushes each step's outputs, the web
process serves the finished files from the store with working Range requests, and LanceDB's tables are in the
bucket.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from litestar.testing import TestClient

from app.adapters.object_storage import LocalStorage, S3Storage, parse_s3_url, storage_for
from media import ffmpeg as ff
from tests.app.helpers import run, services
from tests.app.test_accounts import signup
from tests.conftest import csrf_of, make_settings
from tests.media.helpers import make_video

BUCKET = "foryou-media"
KEYS = {"storage_access_key": "test-key", "storage_secret_key": "test-secret", "storage_region": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server in a thread on a free port, with an empty bucket; stopped after the module."""
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server", reason="moto[server] not installed")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    started = time.monotonic()
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEYS["storage_access_key"],
                          aws_secret_access_key=KEYS["storage_secret_key"], region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    assert time.monotonic() - started < 30, "moto took too long to start"
    yield endpoint
    server.stop()


def _storage(endpoint: str, prefix: str) -> S3Storage:
    return S3Storage(f"s3://{BUCKET}/{prefix}", endpoint, KEYS["storage_access_key"], KEYS["storage_secret_key"])


def test_urls_and_the_default():
    assert isinstance(storage_for(""), LocalStorage) and not storage_for("").remote
    assert parse_s3_url("s3://bucket/a/b/") == ("bucket", "a/b")
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    with pytest.raises(ValueError, match="s3://bucket"):
        parse_s3_url("/var/media")


def test_push_pull_prune_delete_move_only_what_changed(s3_endpoint, tmp_path):
    storage = _storage(s3_endpoint, "unit")
    storage.start()
    here = tmp_path / "here" / "v_1"
    (here / "frames").mkdir(parents=True)
    (here / "original").write_bytes(b"o" * 1000)
    (here / "frames" / "0001.jpg").write_bytes(b"f")
    assert storage.push("v_1", here) == 2
    assert storage.push("v_1", here) == 0, "unchanged files are not sent again"

    there = tmp_path / "there" / "v_1"
    there.mkdir(parents=True)
    assert storage.pull("v_1", there) == 2
    assert (there / "frames" / "0001.jpg").read_bytes() == b"f"
    assert storage.pull("v_1", there) == 0
    (there / "result.json").write_text("{}")
    assert storage.push("v_1", there) == 1, "what was pulled is known; only the new file goes up"

    (there / "frames" / "0001.jpg").unlink()
    assert storage.prune("v_1", there) == 1
    assert storage.stat("v_1", "frames/0001.jpg") is None
    assert storage.stat("v_1", "original").size == 1000
    assert b"".join(storage.read("v_1", "original", 10, 19)) == b"o" * 10
    assert storage.delete("v_1") == 2 and storage.stat("v_1", "original") is None
    with pytest.raises(ValueError):
        storage.key("../etc", "passwd")


def test_a_missing_bucket_is_created_on_first_start(s3_endpoint):
    storage = S3Storage("s3://fresh-bucket/x", s3_endpoint, KEYS["storage_access_key"], KEYS["storage_secret_key"])
    storage.start()
    storage.client.head_bucket(Bucket="fresh-bucket")
    storage.start()  # and found on the next


def test_an_unreachable_store_is_a_clear_error_at_start(tmp_path):
    storage = S3Storage("s3://nowhere/x", "http://127.0.0.1:9", "k", "s")
    with pytest.raises(RuntimeError, match="not usable"):
        storage.start()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    from media.models import ClipEmbedder, ModelRegistry, ModelSettings

    models = ModelRegistry(ModelSettings(models_dir=str(tmp_path_factory.mktemp("models"))))
    models.set("clip", ClipEmbedder.random_for_tests())
    return models


@pytest.mark.slow
def test_upload_processed_by_a_worker_elsewhere_and_served_from_the_store_with_ranges(
        tmp_path, s3_endpoint, registry):
    from app.server.app import create_app

    clip = make_video(ff.locate(), tmp_path / "clip.mp4", duration=2.0)
    web_dir, worker_dir = tmp_path / "web", tmp_path / "worker"
    database_url = f"sqlite+aiosqlite:///{(web_dir / 'foryou.db').resolve()}"
    common = {"storage_url": f"s3://{BUCKET}/app", "storage_endpoint": s3_endpoint, "database_url": database_url,
              **KEYS}
    web = make_settings(web_dir, **common)
    worker = make_settings(worker_dir, **common)
    with TestClient(create_app(web, models=registry)) as client:
        signup(client, username="cloudy")
        response = client.post("/api/uploads", params={"caption": "Up in the cloud #s3"},
                               content=clip.read_bytes(),
                               headers={"x-csrf-token": csrf_of(client), "content-type": "video/mp4"})
        assert response.status_code == 201, response.text
        video_id = response.json()["id"]
        storage = services(client).videos.storage
        assert storage.stat(video_id, "original").size == len(clip.read_bytes())

        with TestClient(create_app(worker, models=registry)) as worker_client:
            steps = run(worker_client, services(worker_client).jobs.drain())
        assert steps == len(services(client).videos.pipeline_steps)
        assert not (web_dir / "media" / video_id / "video.mp4").exists(), "the web side never had the file"
        assert storage.stat(video_id, "frames") is None and storage.stat(video_id, "audio.wav") is None

        whole = client.get(f"/media/{video_id}/video.mp4")
        assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
        assert len(whole.content) == storage.stat(video_id, "video.mp4").size > 1000
        part = client.get(f"/media/{video_id}/video.mp4", headers={"range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == whole.content[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"
        tail = client.get(f"/media/{video_id}/video.mp4", headers={"range": "bytes=-50"})
        assert tail.status_code == 206 and tail.content == whole.content[-50:]
        beyond = client.get(f"/media/{video_id}/video.mp4", headers={"range": f"bytes={len(whole.content)}-"})
        assert beyond.status_code == 416
        assert client.get(f"/media/{video_id}/poster.jpg").headers["content-type"] == "image/jpeg"
        assert client.get(f"/media/{video_id}/original").status_code == 404, "only servable names"

        # LanceDB's tables live in the bucket, and the web side reads the worker's vectors from there.
        assert video_id in {row["id"] for row in services(client).vectors.all_videos()}
        keys = [o["Key"] for o in storage.client.list_objects_v2(Bucket=BUCKET, Prefix="app/lancedb/")["Contents"]]
        assert any(key.startswith("app/lancedb/videos.lance/") for key in keys)

        run(client, services(client).removal.delete(video_id))
        assert storage.stat(video_id, "video.mp4") is None and storage.stat(video_id, "original") is None
    assert not list(Path(worker_dir / "lancedb").glob("*.lance")), "no local LanceDB tables on object storage"
