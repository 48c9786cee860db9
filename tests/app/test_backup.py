"""`foryou backup create / verify / restore` and the scheduled backup with retention, on real data dirs
(a migrated SQLite database, LanceDB tables written by the app's VectorStore, media files)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.adapters.vector_store import VectorStore, VideoVectors
from app.config import Settings
from app.db.engine import Database
from app.db.migrate import current_head, upgrade
from app.db.models import Event, User, Video
from app.ops import backup
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]


def populate(settings: Settings, events: int = 5) -> str:
    """A data dir as the app leaves it: database rows, two vector tables, media files, a generated secret."""
    upgrade(settings)

    async def _rows() -> str:
        db = Database(settings.resolved_database_url)
        try:
            async with db.write() as session:
                session.add(User(id="u_maker", username="maker", display_name="Maker", is_guest=False))
                await session.flush()
                video = Video(creator_id="u_maker", state="ready", caption="bread #baking", duration=8.0)
                session.add(video)
                await session.flush()
                for i in range(events):
                    session.add(Event(event_id=f"e{i}", event_type="view", user_id="u_maker", video_id=video.id,
                                      watch_duration=1.0 + i))
                return video.id
        finally:
            await db.dispose()

    video_id = asyncio.run(_rows())
    vectors = VectorStore(settings.lancedb_dir)
    for vid in (video_id, "v_gone_from_db"):
        vectors.upsert_video(VideoVectors(video_id=vid, creator_id="u_maker", topic="food", hashtags=["baking"],
                                          caption="bread", duration=8.0, created_at=0.0,
                                          content_vector=np.ones(8, dtype=np.float32), content_model="test"))
    vectors.replace_segments(video_id, [{"start": 0.0, "end": 1.0, "text": "hello bread"}],
                             np.ones((1, 8), dtype=np.float32), "test")
    folder = settings.media_dir / video_id
    folder.mkdir(parents=True)
    (folder / "video.mp4").write_bytes(os.urandom(200_000))
    (folder / "thumb.jpg").write_bytes(os.urandom(5_000))
    settings.effective_secret_key()  # generated into the data dir
    return video_id


def data_settings(path: Path, **overrides: object) -> Settings:
    return make_settings(path, secret_key="", min_free_disk_mb=1, **overrides)


def foryou(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FORYOU_DATA_DIR": str(data_dir), "FORYOU_LOG_JSON": "false",
           "FORYOU_ALLOW_MODEL_DOWNLOADS": "false"}
    return subprocess.run([sys.executable, "-m", "app", "backup", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)


def event_ids(db_file: Path) -> set[str]:
    with sqlite3.connect(db_file) as con:
        return {row[0] for row in con.execute("SELECT event_id FROM events")}


def test_create_verify_and_restore_round_trip(tmp_path):
    source = data_settings(tmp_path / "data")
    video_id = populate(source)
    manifest = backup.create(source, tmp_path / "bk")

    assert manifest["format"] == "foryou-backup" and manifest["format_version"] == 1
    assert manifest["alembic_revision"] == current_head() and manifest["app_version"] == "0.1.0"
    assert manifest["created_at"] and manifest["database"]["integrity_check"] == "ok"
    assert manifest["media"]["count"] == 2 and manifest["media"]["bytes"] == 205_000
    tables = manifest["lancedb"]["tables"]
    assert tables["videos"]["rows"] == 1 and tables["videos"]["dropped_unknown_videos"] == 1  # db is the truth
    assert tables["transcript_segments"]["rows"] == 1
    on_disk = {p.relative_to(tmp_path / "bk").as_posix() for p in (tmp_path / "bk").rglob("*") if p.is_file()}
    assert on_disk - {"manifest.json"} == set(manifest["files"])  # every file checksummed
    assert {"foryou.db", "secret_key", f"media/{video_id}/video.mp4"} <= set(manifest["files"])
    assert not (tmp_path / "bk.partial").exists()
    assert backup.verify(tmp_path / "bk") == []

    target = data_settings(tmp_path / "fresh")
    result = backup.restore(target, tmp_path / "bk")
    assert result["previous_contents_moved_to"] is None and result["media_files"] == 2
    assert event_ids(target.data_dir / "foryou.db") == {f"e{i}" for i in range(5)}
    for name in ("video.mp4", "thumb.jpg"):
        assert (target.media_dir / video_id / name).read_bytes() == (source.media_dir / video_id / name).read_bytes()
    restored = VectorStore(target.lancedb_dir)
    assert [row["id"] for row in restored.all_videos()] == [video_id]
    assert restored.count("transcript_segments") == 1
    assert (target.data_dir / "secret_key").read_text() == (source.data_dir / "secret_key").read_text()
    assert oct((target.data_dir / "secret_key").stat().st_mode & 0o777) == "0o600"


def test_a_backup_folder_must_be_new_or_empty(tmp_path):
    source = data_settings(tmp_path / "data")
    populate(source)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "something").write_text("x")
    with pytest.raises(backup.BackupError, match="not empty"):
        backup.create(source, tmp_path / "used")
    (tmp_path / "empty").mkdir()
    assert backup.create(source, tmp_path / "empty")["files"]


def test_verify_names_every_corrupted_truncated_missing_or_added_file(tmp_path):
    source = data_settings(tmp_path / "data")
    video_id = populate(source)
    backup.create(source, tmp_path / "bk")
    bk = tmp_path / "bk"
    media = bk / "media" / video_id / "video.mp4"
    raw = bytearray(media.read_bytes())
    raw[1000] ^= 0xFF  # one flipped bit-pattern, same size
    media.write_bytes(bytes(raw))
    db = bk / "foryou.db"
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])  # truncated
    (bk / "media" / video_id / "thumb.jpg").unlink()
    (bk / "stray.txt").write_text("not from the backup")

    problems = backup.verify(bk)
    text = "\n".join(problems)
    assert f"checksum mismatch: media/{video_id}/video.mp4" in text
    assert "wrong size: foryou.db" in text
    assert "foryou.db fails PRAGMA integrity_check" in text or "not a readable SQLite database" in text
    assert f"missing: media/{video_id}/thumb.jpg" in text
    assert "unexpected file (not in the manifest): stray.txt" in text

    done = foryou(tmp_path / "unused", "verify", str(bk))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "is NOT sound" in done.stderr and f"media/{video_id}/video.mp4" in done.stderr
    refused = foryou(tmp_path / "fresh", "restore", str(bk))
    assert refused.returncode == 1 and "failed verification, nothing was restored" in refused.stderr
    assert not (tmp_path / "fresh" / "foryou.db").exists()


def test_verify_catches_a_database_damaged_inside_and_a_broken_manifest(tmp_path):
    source = data_settings(tmp_path / "data")
    populate(source, events=2000)
    backup.create(source, tmp_path / "bk")
    db = tmp_path / "bk" / "foryou.db"
    raw = bytearray(db.read_bytes())
    page = 4096
    for offset in range(page * 3, len(raw) - page, page):  # scribble over b-tree pages, keep the size
        raw[offset + 8: offset + 64] = os.urandom(56)
    db.write_bytes(bytes(raw))
    text = "\n".join(backup.verify(tmp_path / "bk"))
    assert "checksum mismatch: foryou.db" in text
    assert "integrity_check" in text or "not a readable SQLite database" in text

    (tmp_path / "bk" / "manifest.json").write_text("{broken")
    assert "is not valid JSON" in backup.verify(tmp_path / "bk")[0]
    assert "has no manifest.json" in backup.verify(tmp_path / "nothing")[0]


def test_restore_refuses_a_data_dir_with_data_and_with_force_moves_it_aside(tmp_path):
    source = data_settings(tmp_path / "data")
    populate(source)
    backup.create(source, tmp_path / "bk")

    target = data_settings(tmp_path / "live")
    populate(target, events=1)  # another deployment's data
    before = event_ids(target.data_dir / "foryou.db")
    refused = foryou(target.data_dir, "restore", str(tmp_path / "bk"))
    assert refused.returncode == 1
    assert "is not empty" in refused.stderr and "--force" in refused.stderr
    assert event_ids(target.data_dir / "foryou.db") == before  # untouched

    done = foryou(target.data_dir, "restore", str(tmp_path / "bk"), "--force")
    assert done.returncode == 0, done.stderr
    assert "moved to" in done.stdout
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("live.before-restore-")]
    assert len(aside) == 1 and event_ids(aside[0] / "foryou.db") == before  # kept, never deleted
    assert (aside[0] / "media").is_dir() and (aside[0] / "secret_key").is_file()
    assert event_ids(target.data_dir / "foryou.db") == {f"e{i}" for i in range(5)}


def test_an_empty_data_dir_and_the_backups_folder_inside_it_do_not_count_as_data(tmp_path):
    source = data_settings(tmp_path / "data")
    populate(source)
    inside = source.backups_dir / "foryou-manual"
    backup.create(source, inside)
    # A restore into the same data dir from its own backups folder: the backups stay where they are.
    with pytest.raises(backup.BackupError, match="is not empty"):
        backup.restore(source, inside)
    result = backup.restore(source, inside, force=True)
    assert (inside / "manifest.json").is_file() and backup.verify(inside) == []
    assert Path(result["previous_contents_moved_to"]).joinpath("foryou.db").is_file()

    fresh = data_settings(tmp_path / "fresh")
    fresh.ensure_dirs()  # empty folders, as a first start leaves them
    assert backup.restore(fresh, inside)["previous_contents_moved_to"] is None


def test_cli_create_and_verify(tmp_path):
    source = data_settings(tmp_path / "data")
    populate(source)
    made = foryou(source.data_dir, "create", str(tmp_path / "bk"))
    assert made.returncode == 0, made.stderr
    assert "backup written to" in made.stdout and current_head() in made.stdout
    ok = foryou(source.data_dir, "verify", str(tmp_path / "bk"))
    assert ok.returncode == 0 and "is sound" in ok.stdout
    again = foryou(source.data_dir, "create", str(tmp_path / "bk"))
    assert again.returncode == 1 and "not empty" in again.stderr
    manifest = json.loads((tmp_path / "bk" / "manifest.json").read_text())
    assert manifest["source"]["database"].endswith("foryou.db")


def test_postgres_and_object_storage_are_refused_with_what_to_use_instead(tmp_path):
    pg = data_settings(tmp_path / "pg", database_url="postgresql+asyncpg://u@127.0.0.1/foryou")
    with pytest.raises(backup.BackupError, match="pg_dump"):
        backup.create(pg, tmp_path / "bk")
    assert "pg_dump" in backup.scheduled_backup(pg)["skipped"]
    s3 = data_settings(tmp_path / "s3", storage_url="s3://bucket/prefix")
    with pytest.raises(backup.BackupError, match="object storage"):
        backup.create(s3, tmp_path / "bk")


def test_scheduled_backups_keep_the_newest_n_and_hard_link_unchanged_media(tmp_path):
    settings = data_settings(tmp_path / "data", backup_keep=2)
    video_id = populate(settings)
    root = settings.backups_dir
    (root / "foryou-20260101T000000.000000Z.partial" / "media").mkdir(parents=True)  # a run killed half-way
    made = [backup.scheduled_backup(settings)["backup"] for _ in range(3)]
    assert not list(root.glob("*.partial"))
    kept = [p.name for p in backup.complete_backups(root)]
    assert kept == made[1:]  # the oldest went
    assert not (root / made[0]).exists()
    newest = json.loads((root / made[2] / "manifest.json").read_text())
    assert newest["media"]["hard_linked"] == 2 and newest["media"]["copied"] == 0
    assert (root / made[2] / "media" / video_id / "video.mp4").stat().st_ino == \
        (root / made[1] / "media" / video_id / "video.mp4").stat().st_ino
    assert all(backup.verify(root / name) == [] for name in kept)  # removing the oldest broke no link

    (settings.media_dir / video_id / "video.mp4").write_bytes(b"changed")  # a changed file is copied again
    changed = backup.scheduled_backup(settings)
    assert changed["media_hard_linked"] == 1 and len(backup.complete_backups(root)) == 2
    assert (root / changed["backup"] / "media" / video_id / "video.mp4").read_bytes() == b"changed"


def test_the_daily_backup_is_a_periodic_job_and_can_be_switched_off(tmp_path):
    from app.server.services import Services

    on = Services.build(data_settings(tmp_path / "a"))
    job = next(j for j in on.scheduled_jobs() if j.name == "backups:daily")
    assert job.every_s == 24 * 3600 and "keep" in job.description
    off = Services.build(data_settings(tmp_path / "b", backup_every_hours=0))
    assert "backups:daily" not in {j.name for j in off.scheduled_jobs()}


async def test_the_scheduler_runs_the_backup_job_once_per_interval_and_keeps_n(tmp_path):
    from app.db.leases import PeriodicLeases
    from app.server.scheduler import Scheduler
    from app.server.services import Services

    settings = data_settings(tmp_path / "data", backup_keep=2, job_intervals=("backups:daily=1",))
    await asyncio.to_thread(populate, settings)
    services = Services.build(settings)
    await services.start(recommender=False)
    job = next(j for j in services.scheduled_jobs() if j.name == "backups:daily")
    assert job.every_s == 1.0
    scheduler = Scheduler([job], PeriodicLeases(services.db, services.owner, settings.job_lease_s))
    try:
        await scheduler.start()
        deadline = asyncio.get_running_loop().time() + 60
        while len(backup.complete_backups(settings.backups_dir)) < 2:
            assert asyncio.get_running_loop().time() < deadline, "the scheduler made no second backup in 60 s"
            await asyncio.sleep(0.25)
        first_two = [p.name for p in backup.complete_backups(settings.backups_dir)]
        while first_two[0] in {p.name for p in backup.complete_backups(settings.backups_dir)}:
            assert asyncio.get_running_loop().time() < deadline, "no third backup replaced the oldest in 60 s"
            await asyncio.sleep(0.25)
    finally:
        await scheduler.stop()
        await services.stop()
    kept = backup.complete_backups(settings.backups_dir)
    assert len(kept) == 2, [p.name for p in settings.backups_dir.iterdir()]
    assert all(backup.verify(path) == [] for path in kept)


def test_jobs_run_backups_daily_from_the_command_line(tmp_path):
    source = data_settings(tmp_path / "data")
    populate(source)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FORYOU_DATA_DIR": str(source.data_dir), "FORYOU_LOG_JSON": "false",
           "FORYOU_ALLOW_MODEL_DOWNLOADS": "false", "FORYOU_BACKUP_KEEP": "1",
           "FORYOU_BACKUP_DIR": str(tmp_path / "elsewhere")}
    names = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-m", "app", "jobs", "run", "backups:daily"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout[done.stdout.index("{"):])
        assert report["job"] == "backups:daily"
        names.append(report["result"]["backup"])
    assert report["result"]["removed"] == [names[0]]
    assert [p.name for p in backup.complete_backups(tmp_path / "elsewhere")] == [names[1]]
