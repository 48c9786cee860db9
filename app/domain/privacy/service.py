"""A user's own data: preferences (muted words, blocked creators), export as a zip, and account deletion.

Deletion leaves nothing that can be tied to the account:

* every upload goes the way ``VideoRemoval.delete`` sends it (rows, files on disk, LanceDB vectors,
  the recommender's catalogue);
* the user's own events are irreversibly anonymised: ``user_id`` and ``session_id`` NULL, a fresh random
  ``event_id``, and ``additional_info`` reduced to non-identifying keys (so aggregate metrics keep their
  history); other people's events lose the ``creator_id`` naming the user and the ids of the deleted uploads;
* the user row goes, and with it (ON DELETE CASCADE) sessions, viewing sessions, likes, saves, comments,
  follows both ways, hidden videos/creators both ways and reports; audit-log entries about the user keep the
  action but not the id;
* the recommender forgets the user's in-memory profile (best effort: it rebuilds from the database at start).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import delete, or_, select, update

from app.config import Settings
from app.db.admin_models import ModerationAction
from app.db.engine import Database
from app.db.models import (
    Comment,
    Event,
    Follow,
    HiddenCreator,
    HiddenVideo,
    Like,
    Report,
    Save,
    User,
    Video,
)
from app.db.sound_models import Sound
from app.domain.accounts.profile import ProfileService
from app.domain.feed.recommender import RecommenderService
from app.domain.sounds.services import default_title
from app.domain.videos.removal import VideoRemoval

log = logging.getLogger(__name__)

MAX_MUTED_WORDS = 100
KEPT_INFO_KEYS = ("position", "source", "feed", "watch_ratio", "video_duration", "replays", "final", "experiment",
                  "variant", "reason", "scope", "platform", "device")
EXPORTED_FILES = ("video.mp4", "poster.jpg", "captions.vtt")


def parse_muted(raw: str) -> list[str]:
    words = [" ".join(w.lower().split())[:48] for w in (raw or "").replace("\n", ",").split(",")]
    return list(dict.fromkeys(w for w in words if w))[:MAX_MUTED_WORDS]


# ---- export ----------------------------------------------------------------------------------------------
def _rows(items: list[Any], skip: tuple[str, ...] = ()) -> list[dict]:
    return [item.model_dump(exclude=set(skip)) for item in items]


def _write_zip(path: Path, data: dict[str, Any], media_dir: Path) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", "Your ForYou data: one JSON file per kind of record, and your uploads "
                                       "(the served video, poster and captions) under uploads/.\n")
        for name, value in data.items():
            archive.writestr(f"{name}.json", json.dumps(value, indent=2, default=str, ensure_ascii=False))
        for upload in data["uploads"]:
            folder = media_dir / upload["id"]
            for name in EXPORTED_FILES:
                if (folder / name).is_file():
                    archive.write(folder / name, f"uploads/{upload['id']}/{name}", compress_type=zipfile.ZIP_STORED)


async def stream_and_remove(path: Path, chunk: int = 256 * 1024) -> AsyncIterator[bytes]:
    try:
        with open(path, "rb") as handle:
            while block := await asyncio.to_thread(handle.read, chunk):
                yield block
    finally:
        path.unlink(missing_ok=True)


class PrivacyService:
    """A user's own data: muted words, blocked creators, export and deletion."""

    def __init__(self, settings: Settings, db: Database, recommender: RecommenderService,
                 removal: VideoRemoval) -> None:
        self.settings = settings
        self.db = db
        self.recommender = recommender
        self.removal = removal

    async def set_muted_words(self, user: User, raw: str) -> list[str]:
        words = parse_muted(raw)
        async with self.db.write() as session:
            row = await session.get(User, user.id)
            row.preferences = {**(row.preferences or {}), "muted_words": words}
        user.preferences = {**(user.preferences or {}), "muted_words": words}
        return words


    async def blocked_creators(self, user: User) -> list[User]:
        async with self.db.read() as session:
            return list((await session.execute(
                select(User).join(HiddenCreator, HiddenCreator.creator_id == User.id)
                .where(HiddenCreator.user_id == user.id, HiddenCreator.kind == "blocked")
                .order_by(User.username))).scalars())


    async def block_creator(self, user: User, username: str) -> User | None:
        username = (username or "").strip().lstrip("@").lower()
        async with self.db.write() as session:
            creator = (await session.execute(
                select(User).where(User.username == username, User.is_guest.is_(False)))).scalar_one_or_none()
            if creator is None or creator.id == user.id:
                return None
            row = await session.get(HiddenCreator, (user.id, creator.id))
            if row is None:
                session.add(HiddenCreator(user_id=user.id, creator_id=creator.id, kind="blocked"))
            else:
                row.kind = "blocked"
        return creator


    async def unblock_creator(self, user: User, creator_id: str) -> None:
        async with self.db.write() as session:
            await session.execute(delete(HiddenCreator).where(HiddenCreator.user_id == user.id,
                                                              HiddenCreator.creator_id == creator_id))


    async def export_data(self, user: User) -> dict[str, Any]:
        """Everything stored about the user, as JSON-able lists (files are added by :func:`build_export`)."""
        uid = user.id
        async with self.db.read() as session:
            me = await session.get(User, uid)

            async def rows(model: Any, *where: Any) -> list[Any]:
                return list((await session.execute(select(model).where(*where))).scalars())

            data = {
                "profile": _rows([me], skip=("password_hash",))[0],
                "events": _rows(await rows(Event, Event.user_id == uid)),
                "comments": _rows(await rows(Comment, Comment.user_id == uid)),
                "likes": _rows(await rows(Like, Like.user_id == uid)),
                "saves": _rows(await rows(Save, Save.user_id == uid)),
                "following": _rows(await rows(Follow, Follow.follower_id == uid)),
                "hidden_videos": _rows(await rows(HiddenVideo, HiddenVideo.user_id == uid)),
                "hidden_creators": _rows(await rows(HiddenCreator, HiddenCreator.user_id == uid)),
                "reports": _rows(await rows(Report, Report.user_id == uid)),
                "uploads": _rows(await rows(Video, Video.creator_id == uid)),
            }
        return data


    async def build_export(self, user: User) -> Path:
        """Write the zip to a temporary file (uploads can be large: never held in memory)."""
        data = await self.export_data(user)
        self.settings.uploads_tmp_dir.mkdir(parents=True, exist_ok=True)
        path = self.settings.uploads_tmp_dir / f"{secrets.token_hex(12)}.export.zip"
        try:
            await asyncio.to_thread(_write_zip, path, data, self.settings.media_dir)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path


    # ---- deletion --------------------------------------------------------------------------------------------
    async def delete_account(self, user: User) -> dict[str, int]:
        uid = user.id
        async with self.db.read() as session:
            video_ids = list((await session.execute(select(Video.id).where(Video.creator_id == uid))).scalars())
            avatar = (await session.get(User, uid)).avatar_path
        for video_id in video_ids:
            await self.removal.delete(video_id)
        async with self.db.read() as session:
            own = list((await session.execute(
                select(Event.id, Event.additional_info).where(Event.user_id == uid))).all())
        async with self.db.write() as session:
            for event_id, info in own:
                kept = {k: v for k, v in (info or {}).items() if k in KEPT_INFO_KEYS}
                await session.execute(update(Event).where(Event.id == event_id).values(
                    user_id=None, session_id=None, event_id=f"anon-{secrets.token_hex(12)}", additional_info=kept))
            await session.execute(update(Event).where(Event.creator_id == uid).values(creator_id=None))
            if video_ids:  # other people's views of the deleted uploads: the ids would point at nothing but them
                await session.execute(update(Event).where(Event.video_id.in_(video_ids)).values(video_id=None))
            await session.execute(update(ModerationAction).where(
                or_(ModerationAction.target_id == uid, ModerationAction.target_id.in_(video_ids or [""])))
                .values(target_id="deleted", details={}))
            if user.username:
                await session.execute(update(ModerationAction).where(ModerationAction.actor == user.username)
                                      .values(actor="deleted"))
            # Sounds they started live on under other people's videos, but no longer carry their name.
            await session.execute(update(Sound).where(Sound.creator_id == uid).values(
                title=default_title(None), creator_id=None))
            await session.execute(delete(User).where(User.id == uid))
        if avatar:
            (self.settings.data_dir / avatar).unlink(missing_ok=True)
            # With object storage the picture lives in the bucket too (a no-op on local storage).
            await asyncio.to_thread(self.removal.videos.storage.delete, ProfileService.store_key(uid))
        self._forget_in_recommender(uid)
        log.info("account deleted", extra={"videos": len(video_ids), "events_anonymised": len(own)})
        return {"videos": len(video_ids), "events": len(own)}


    def _forget_in_recommender(self, user_id: str) -> None:
        """The recommender's memory of the user goes too (its copy of their events is anonymised like the log)."""
        self.recommender.forget_user(user_id)  # with replicas, every one forgets
