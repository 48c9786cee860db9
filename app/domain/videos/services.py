"""Accepting uploads, and the lifecycle of a video (retry, delete).

An upload is streamed to a temporary file, probed, and only then stored for good: the file moves into the
video's folder and the video row is written together with its pipeline's job rows in one transaction. If
anything fails on the way, the temporary file and the folder are removed, so a bad upload leaves nothing.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from app.adapters.object_storage import LocalStorage, MediaStorage
from app.config import Settings
from app.db.engine import Database
from app.db.models import MediaJob, Video, is_published, new_id, utcnow
from app.db.sound_models import Sound
from app.domain.accounts.profile import AVATAR_DIR
from media.audio import copy_audio_track
from media.errors import MediaRejected
from media.ffmpeg import FFmpegTools, locate
from media.probe import MediaLimits, ProbeInfo, probe
from media.text import parse_hashtags
from media.transcode import SOUND_MODES

log = logging.getLogger(__name__)

MAX_CAPTION = 2200
MAX_TOPIC = 48
SOUND_FILE = "sound.m4a"  # "use this sound": the chosen track, copied into the upload's folder


class DuplicateUpload(MediaRejected):
    """The creator already has a video made from exactly these bytes (same sha256): nothing new is stored."""

    def __init__(self, existing_id: str, published: bool = True) -> None:
        super().__init__("duplicate", "You already uploaded this exact video. Nothing new was stored.")
        self.existing_id = existing_id
        self.published = published

    @property
    def existing_url(self) -> str:
        """Its page once published; until then (processing, failed, in review) its status page."""
        return f"/v/{self.existing_id}" if self.published else f"/videos/{self.existing_id}/status"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class UploadTooLarge(Exception):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"The file is larger than the {limit_bytes // (1024 * 1024)} MB upload limit.")


def media_limits(settings: Settings) -> MediaLimits:
    return MediaLimits(
        max_bytes=settings.max_upload_bytes,
        max_duration_s=settings.max_video_seconds,
        max_pixels=settings.max_pixels,
        transcode_timeout_s=settings.subprocess_timeout_s,
    )


def ffmpeg_tools(settings: Settings) -> FFmpegTools:
    return locate(settings.ffmpeg_path or None, settings.ffprobe_path or None)


class VideoService:
    def __init__(self, settings: Settings, db: Database, pipeline_steps: tuple[str, ...],
                 storage: MediaStorage | None = None) -> None:
        self.settings = settings
        self.storage = storage or LocalStorage()
        self.db = db
        self.pipeline_steps = pipeline_steps
        self.limits = media_limits(settings)
        self._receiving: dict[str, IO[bytes]] = {}  # partial uploads this process holds, by file name
        self._digests: dict[str, str] = {}  # sha256 of each received upload, by file name, until accepted

    def folder(self, video_id: str) -> Path:
        return self.settings.media_dir / video_id

    async def receive_stream(self, chunks: AsyncIterator[bytes]) -> Path:
        """Stream a request body to a temporary file, refusing it past the size limit (never held in memory)."""
        self.settings.uploads_tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.settings.uploads_tmp_dir / f"{secrets.token_hex(12)}.upload"
        written = 0
        digest = hashlib.sha256()  # of the bytes as they arrive: no second read of the file
        # The file stays locked (flock) by this process until ``accept`` is done with it: the sweep, in this
        # process or another, removes only partial uploads nobody holds (a process killed mid-body holds none).
        handle = open(tmp, "wb")  # noqa: SIM115 - kept open (and locked) past this function
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        self._receiving[tmp.name] = handle
        try:
            async for chunk in chunks:
                written += len(chunk)
                if written > self.settings.max_upload_bytes:
                    raise UploadTooLarge(self.settings.max_upload_bytes)
                handle.write(chunk)
                digest.update(chunk)
            handle.flush()
        except BaseException:
            tmp.unlink(missing_ok=True)
            self.release(tmp)
            raise
        self._digests[tmp.name] = digest.hexdigest()
        return tmp

    def release(self, tmp: Path) -> None:
        """This process no longer holds the partial upload ``tmp`` (stored, refused or abandoned)."""
        self._digests.pop(tmp.name, None)
        handle = self._receiving.pop(tmp.name, None)
        if handle is not None:
            handle.close()

    async def accept(self, creator_id: str, tmp: Path, caption: str, topic: str | None,
                     sound_id: str | None = None, sound_mode: str = "replace") -> Video:
        """Probe the upload; store it and queue its pipeline, or raise ``MediaRejected`` leaving nothing behind.
        ``sound_id``: "use this sound" (its track replaces, or with ``sound_mode="mix"`` goes under, the audio).
        The same creator uploading the same bytes again (sha256 of the file) gets ``DuplicateUpload``, naming
        the video they already have; another creator's identical file is a new video of theirs."""
        caption = (caption or "").strip()[:MAX_CAPTION]
        topic = (topic or "").strip().lower()[:MAX_TOPIC] or None
        sound_mode = sound_mode if sound_mode in SOUND_MODES else "replace"
        folder: Path | None = None
        try:
            sound = await self._usable_sound(sound_id) if sound_id else None
            content_hash = self._digests.get(tmp.name) or await asyncio.to_thread(file_sha256, tmp)
            await self._refuse_duplicate(creator_id, content_hash)
            info: ProbeInfo = await asyncio.to_thread(probe, tmp, self.limits, ffmpeg_tools(self.settings))
            video_id = new_id("v_")
            folder = self.folder(video_id)
            folder.mkdir(parents=True)
            os.replace(tmp, folder / "original")
            if sound is not None:
                await self._copy_sound(sound, folder / SOUND_FILE)
            # In the store before its jobs exist: a worker on another machine may claim the first one at once.
            await asyncio.to_thread(self.storage.push, video_id, folder)
            try:
                video = await self._insert(video_id, creator_id, caption, topic, info, content_hash, sound,
                                           sound_mode)
            except IntegrityError:
                # The same bytes arrived twice at once: the other upload's row won the unique index.
                await self._refuse_duplicate(creator_id, content_hash)
                raise
            return video
        except BaseException:
            tmp.unlink(missing_ok=True)
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
                await asyncio.to_thread(self.storage.delete, folder.name)
            raise
        finally:
            self.release(tmp)

    async def _refuse_duplicate(self, creator_id: str, content_hash: str) -> None:
        async with self.db.read() as session:
            existing = (await session.execute(select(Video).where(
                Video.creator_id == creator_id, Video.content_hash == content_hash))).scalar_one_or_none()
        if existing is not None:
            raise DuplicateUpload(existing.id, is_published(existing))

    async def _insert(self, video_id: str, creator_id: str, caption: str, topic: str | None, info: ProbeInfo,
                      content_hash: str, sound: Sound | None, sound_mode: str) -> Video:
        """The video row and its pipeline's job rows, in one transaction."""
        async with self.db.write() as session:
            video = Video(
                id=video_id, creator_id=creator_id, caption=caption, hashtags=parse_hashtags(caption),
                topic=topic, duration=info.duration_s, size_bytes=info.size_bytes, width=info.width,
                height=info.height, state="processing", content_hash=content_hash,
                metadata_={"tags": parse_hashtags(caption), "description": caption,
                           "audio_id": None,  # the sound step sets it: the id of the sound it uses
                           "probe": info.to_dict(),
                           **({"use_sound": {"id": sound.id, "mode": sound_mode}} if sound else {})},
            )
            session.add(video)
            await session.flush()  # no ORM relationship orders the inserts: the video row goes first
            session.add_all(
                MediaJob(video_id=video_id, step=step, position=index)
                for index, step in enumerate(self.pipeline_steps)
            )
        return video

    async def _usable_sound(self, sound_id: str) -> Sound:
        async with self.db.read() as session:
            sound = await session.get(Sound, sound_id[:32])
        if sound is None or not sound.original_video_id:
            raise MediaRejected("sound_unavailable", "That sound is no longer available. Pick another sound, or "
                                "upload without one.")
        return sound

    async def _copy_sound(self, sound: Sound, dst: Path) -> None:
        """The sound's track, from its original video, into the new upload's folder (its own copy: the upload
        keeps working if the original goes later)."""
        source_folder = self.folder(sound.original_video_id)
        source = source_folder / "video.mp4"
        if not source.is_file() and getattr(self.storage, "remote", False):
            await asyncio.to_thread(self.storage.pull, sound.original_video_id, source_folder)
        copied = source.is_file() and await asyncio.to_thread(copy_audio_track, source, dst, self.limits,
                                                               ffmpeg_tools(self.settings))
        if not copied:
            raise MediaRejected("sound_unavailable", "That sound is no longer available. Pick another sound, or "
                                "upload without one.")

    async def retry(self, video_id: str) -> bool:
        """Send a failed video through its pipeline again, from its first unfinished step."""
        async with self.db.write() as session:
            video = await session.get(Video, video_id)
            if video is None or video.state != "failed":
                return False
            await session.execute(
                update(MediaJob)
                .where(MediaJob.video_id == video_id, MediaJob.status != "succeeded")
                .values(status="pending", attempts=0, error=None, run_after=utcnow(), progress=0.0)
            )
            video.state = "processing"
            video.failure_reason = None
        return True

    async def delete(self, video_id: str) -> None:
        """Remove a video's rows (jobs, likes, comments... cascade) and its files."""
        async with self.db.write() as session:
            await session.execute(delete(Video).where(Video.id == video_id))
        shutil.rmtree(self.folder(video_id), ignore_errors=True)
        await asyncio.to_thread(self.storage.delete, video_id)

    async def sweep_orphans(self, folder_grace_s: float = 600.0) -> int:
        """Remove partial uploads that no live upload holds (left by a crash or a kill mid-body) and media
        folders that no video row owns. Runs at start-up and periodically (``uploads:sweep``).

        A partial upload is live while some process holds its lock; a folder younger than ``folder_grace_s``
        may be an upload being stored by another process right now, so it waits for a later sweep."""
        removed = 0
        for partial in self.settings.uploads_tmp_dir.glob("*.upload"):
            if partial.name in self._receiving or not _unheld(partial):
                continue
            partial.unlink(missing_ok=True)
            removed += 1
        if self.settings.media_dir.is_dir():
            cutoff = time.time() - folder_grace_s
            async with self.db.read() as session:
                known = set((await session.execute(select(Video.id))).scalars())
            for folder in self.settings.media_dir.iterdir():
                if folder.name == AVATAR_DIR:  # people's pictures (app.domain.accounts.profile), not a video
                    continue
                if folder.is_dir() and folder.name not in known and folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += 1
        if removed:
            log.info("orphaned uploads removed", extra={"removed": removed})
        return removed


def _unheld(path: Path) -> bool:
    """True when no process holds the lock of ``path`` (so nobody is still writing or storing it)."""
    try:
        with open(path, "rb") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
    except BlockingIOError:
        return False
    except FileNotFoundError:
        return False


def rejection_message(exc: MediaRejected) -> dict[str, str]:
    return {"error": exc.message, "code": exc.code}

