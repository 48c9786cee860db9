"""What the ``foryou`` subcommands do, outside the web server (same services, same pipeline)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import String, cast, func, select

from app.config import PROJECT_ROOT, Settings
from app.db.engine import Database
from app.db.migrate import upgrade
from app.db.models import MediaJob, User, Video
from app.server.services import Services
from media.errors import MediaRejected

DEMO_DIR = PROJECT_ROOT / "demo"


class CommandError(Exception):
    """A failure to report in one line and exit non-zero."""


@asynccontextmanager
async def running(settings: Settings, *, scheduler: bool = False, recommender: bool = False
                  ) -> AsyncIterator[Services]:
    """The app's services without the web server: migrated database, event writer, and (only for the commands
    that ask for it) the recommender's state, which costs a snapshot load or a replay.

    Safe beside a live server on the same database: start-up reclaims only steps whose lease has expired."""
    services = Services.build(settings)
    services.hold_data_dir()
    await asyncio.to_thread(upgrade, settings)
    await services.start(scheduler=scheduler, recommender=recommender)
    try:
        yield services
    finally:
        await services.stop()


async def ensure_creator(services: Services, username: str, display_name: str = "", bio: str = "") -> User:
    """A creator account for scripts and the demo (no password: it cannot log in until one is set)."""
    async with services.db.write() as session:
        user = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
        if user is None:
            user = User(username=username, display_name=display_name or username, bio=bio, is_guest=False)
            session.add(user)
        elif bio and not user.bio:
            user.bio = bio
    return user


async def upload_file(services: Services, path: Path, username: str, caption: str, topic: str | None = None,
                      metadata: dict | None = None) -> Video:
    """Upload through the same validation and pipeline as the web page (the file is copied, never moved)."""
    if not path.is_file():
        raise CommandError(f"No such file: {path}")
    user = await ensure_creator(services, username)

    async def chunks() -> AsyncIterator[bytes]:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                yield chunk

    tmp = await services.videos.receive_stream(chunks())
    try:
        video = await services.videos.accept(user.id, tmp, caption, topic)
    except MediaRejected as exc:
        raise CommandError(exc.message) from exc
    if metadata:
        async with services.db.write() as session:
            row = await session.get(Video, video.id)
            row.metadata_ = {**row.metadata_, **metadata}
    return video


async def wait_until_done(services: Services, video_ids: list[str], timeout_s: float = 3600) -> None:
    """Drive the job queue in this process until the given videos are ready or failed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ran = await services.jobs.drain(max_seconds=30)
        async with services.db.read() as session:
            waiting = (await session.execute(
                select(func.count()).select_from(Video).where(Video.id.in_(video_ids), Video.state == "processing")
            )).scalar_one()
        if not waiting:
            return
        if not ran:
            await asyncio.sleep(1.0)  # a step is backing off before a retry
    raise CommandError("Timed out waiting for processing to finish.")


async def video_report(services: Services, video_id: str) -> dict:
    async with services.db.read() as session:
        video = await session.get(Video, video_id)
        jobs = (await session.execute(
            select(MediaJob).where(MediaJob.video_id == video_id).order_by(MediaJob.position))).scalars().all()
    models = (video.metadata_ or {}).get("models", {})
    return {
        "video_id": video.id,
        "state": video.state,
        "failure_reason": video.failure_reason,
        "caption": video.caption,
        "hashtags": video.hashtags,
        "duration": video.duration,
        "language": video.language,
        "transcript": video.transcript,
        "models": models,
        "steps": [{"step": j.step, "status": j.status, "attempts": j.attempts, "error": j.error,
                   "seconds": (j.result or {}).get("seconds")} for j in jobs],
    }


def load_manifest() -> dict:
    manifest = DEMO_DIR / "manifest.json"
    if not manifest.is_file():
        raise CommandError(f"The demo manifest is missing: {manifest}")
    return json.loads(manifest.read_text())


async def seed(services: Services, if_empty: bool = False, wait: bool = False, limit: int | None = None) -> dict:
    """Upload the demo catalogue as its creators would, once (clips already seeded are skipped)."""
    async with services.db.read() as session:
        existing = (await session.execute(select(Video.metadata_))).scalars().all()
    if if_empty and existing:
        return {"seeded": 0, "skipped": "the catalogue is not empty"}
    seeded_files = {meta.get("demo_clip") for meta in existing if meta}
    manifest = load_manifest()
    for creator in manifest.get("creators", []):
        await ensure_creator(services, creator["handle"], creator.get("display_name", ""), creator.get("bio", ""))
    uploaded: list[str] = []
    for clip in manifest["clips"][:limit]:
        if clip["file"] in seeded_files:
            continue
        video = await upload_file(services, DEMO_DIR / clip["file"], clip["creator"], clip.get("caption", ""),
                                  clip.get("topic"), metadata={"demo_clip": clip["file"]})
        uploaded.append(video.id)
    if wait and uploaded:
        await wait_until_done(services, uploaded)
    return {"seeded": len(uploaded), "total_in_manifest": len(manifest["clips"])}


async def demo_clips_ready(db: Database) -> tuple[int, int]:
    """(ready, seeded) demo clips: seeded ones carry ``demo_clip`` in their metadata."""
    demo = cast(Video.metadata_, String).like('%"demo_clip"%')
    async with db.read() as session:
        seeded = (await session.execute(select(func.count()).select_from(Video).where(demo))).scalar_one()
        ready = (await session.execute(select(func.count()).select_from(Video).where(
            demo, Video.state == "ready"))).scalar_one()
        failed = (await session.execute(select(func.count()).select_from(Video).where(
            demo, Video.state == "failed"))).scalar_one()
    return ready, seeded - failed


def report_demo_progress(settings: Settings, every_s: float = 5.0, out=print) -> None:  # noqa: ANN001
    """Print "12/64 demo clips ready" as clips finish processing, until all are (runs beside the server)."""

    async def _watch() -> None:
        db = Database(settings.resolved_database_url)
        last = -1
        try:
            while True:
                ready, total = await demo_clips_ready(db)
                if ready != last and total:
                    out(f"{ready}/{total} demo clips ready" + (" - the whole catalogue is in the feed." if
                                                              ready >= total else ""), flush=True)
                    last = ready
                if total and ready >= total:
                    return
                await asyncio.sleep(every_s)
        finally:
            await db.dispose()

    try:
        asyncio.run(_watch())
    except Exception:  # noqa: BLE001 - progress lines are a courtesy; the server goes on without them
        logging.getLogger(__name__).exception("demo progress reporting stopped")
