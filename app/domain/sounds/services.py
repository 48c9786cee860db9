"""Sounds: which known sound a processed video's audio is, or a new sound if it is none.

Matching uses ``media.fingerprint``: the video's landmark hashes are looked up in ``sound_hashes`` (indexed by
hash), candidates are lined up by time offset, and the best one that passes ``is_same_audio`` wins. A video that
matches nothing founds a new sound whose landmarks join the index. The whole decision is one write
transaction, so two uploads of the same new track processed at once still become one sound.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import User, Video, published_clause, utcnow
from app.db.sound_models import Sound, SoundHash, VideoSound
from media.fingerprint import MIN_MATCHES, Fingerprint, align, is_same_audio

LOOKUP_CHUNK = 500  # hashes per IN (...) query: well under every driver's parameter limit
MAX_CANDIDATES = 20  # sounds lined up per video, by raw shared hashes
MAX_TITLE = 100


@dataclass(frozen=True)
class SoundMatch:
    sound_id: str
    matches: int
    offset_s: float


def default_title(creator: User | None) -> str:
    name = (creator.display_name or creator.username) if creator is not None else ""
    return f"original sound - {name}" if name else "original sound"


async def find_match(session: AsyncSession, fp: Fingerprint) -> SoundMatch | None:
    """The known sound this fingerprint is, if any."""
    unique = np.unique(fp.hashes).astype(np.int64).tolist()
    hits: dict[str, list[tuple[int, int]]] = {}
    for start in range(0, len(unique), LOOKUP_CHUNK):
        chunk = unique[start:start + LOOKUP_CHUNK]
        rows = await session.execute(select(SoundHash.sound_id, SoundHash.hash, SoundHash.frame)
                                     .where(SoundHash.hash.in_(chunk)))
        for sound_id, hash_, frame in rows:
            hits.setdefault(sound_id, []).append((hash_, frame))
    ranked = Counter({sound_id: len(pairs) for sound_id, pairs in hits.items() if len(pairs) >= MIN_MATCHES})
    if not ranked:
        return None
    sizes = dict((await session.execute(select(Sound.id, Sound.landmarks)
                                        .where(Sound.id.in_(list(ranked))))).all())
    best: SoundMatch | None = None
    for sound_id, _ in ranked.most_common(MAX_CANDIDATES):
        pairs = np.asarray(hits[sound_id], dtype=np.int64)
        alignment = align(fp, pairs[:, 0], pairs[:, 1])
        if is_same_audio(alignment, fp, sizes.get(sound_id, 0)) and (best is None or alignment.matches > best.matches):
            best = SoundMatch(sound_id, alignment.matches, alignment.offset_s)
    return best


async def assign_sound(session: AsyncSession, video: Video, fp: Fingerprint | None,
                       chosen_sound_id: str | None = None) -> VideoSound | None:
    """Give the video its sound (idempotent: an existing assignment stands). ``chosen_sound_id``: the creator
    picked the sound at upload ("use this sound"). No fingerprint and no choice: no sound (silent video)."""
    existing = await session.get(VideoSound, video.id)
    if existing is not None:
        return existing
    if chosen_sound_id is not None and await session.get(Sound, chosen_sound_id) is not None:
        link = VideoSound(video_id=video.id, sound_id=chosen_sound_id, how="chosen")
    elif fp is None or not fp.identifiable:
        return None
    elif (match := await find_match(session, fp)) is not None:
        link = VideoSound(video_id=video.id, sound_id=match.sound_id, how="matched", matches=match.matches,
                          offset_s=match.offset_s)
    else:
        creator = await session.get(User, video.creator_id)
        sound = Sound(title=default_title(creator)[:MAX_TITLE], creator_id=video.creator_id,
                      original_video_id=video.id, seconds=round(fp.seconds, 3), landmarks=len(fp))
        session.add(sound)
        await session.flush()
        await session.execute(insert(SoundHash), [
            {"hash": int(h), "sound_id": sound.id, "frame": int(t)} for h, t in zip(fp.hashes, fp.times, strict=True)
        ])
        link = VideoSound(video_id=video.id, sound_id=sound.id, how="original", matches=len(fp))
    session.add(link)
    row = await session.get(Video, video.id)
    if row is not None:  # the seed's metadata.audio_id (§2.2)
        row.metadata_ = {**row.metadata_, "audio_id": link.sound_id}
    return link


@dataclass(frozen=True)
class SoundView:
    """What a card, a video's metadata and the sound page show about a sound."""

    id: str
    title: str
    usage_count: int


async def sounds_of_videos(session: AsyncSession, video_ids: list[str]) -> dict[str, SoundView]:
    """The sound of each video that has one, with how many published videos use it."""
    if not video_ids:
        return {}
    rows = (await session.execute(select(VideoSound.video_id, Sound.id, Sound.title)
                                  .join(Sound, Sound.id == VideoSound.sound_id)
                                  .where(VideoSound.video_id.in_(video_ids)))).all()
    usage = await published_usage(session, list({sound_id for _, sound_id, _ in rows}))
    return {vid: SoundView(sound_id, title, usage.get(sound_id, 0)) for vid, sound_id, title in rows}


async def published_usage(session: AsyncSession, sound_ids: list[str]) -> dict[str, int]:
    """How many published videos use each sound (the usage count people see)."""
    if not sound_ids:
        return {}
    rows = await session.execute(select(VideoSound.sound_id, func.count()).join(Video, Video.id == VideoSound.video_id)
                                 .where(VideoSound.sound_id.in_(sound_ids), *published_clause())
                                 .group_by(VideoSound.sound_id))
    return dict(rows.all())


@dataclass
class SoundPage:
    sound: Sound
    creator: User | None
    original: Video | None  # None once the original video is gone or not published
    videos: list[Video]  # published videos using it, the original first, then newest first
    usage_count: int


async def sound_page(session: AsyncSession, sound_id: str, limit: int = 90) -> SoundPage | None:
    sound = await session.get(Sound, sound_id)
    if sound is None:
        return None
    creator = await session.get(User, sound.creator_id) if sound.creator_id else None
    videos = list((await session.execute(
        select(Video).join(VideoSound, VideoSound.video_id == Video.id)
        .where(VideoSound.sound_id == sound_id, *published_clause())
        .order_by((Video.id == sound.original_video_id).desc(), Video.created_at.desc()).limit(limit)
    )).scalars())
    original = next((v for v in videos if v.id == sound.original_video_id), None)
    usage = (await published_usage(session, [sound_id])).get(sound_id, 0)
    return SoundPage(sound, creator, original, videos, usage)


async def rename_sound(session: AsyncSession, sound_id: str, user: User, title: str) -> Sound:
    """Only the first uploader names a sound. Raises PermissionError / ValueError / LookupError."""
    sound = await session.get(Sound, sound_id)
    if sound is None:
        raise LookupError("No such sound.")
    if sound.creator_id != user.id:
        raise PermissionError("Only the creator of the original video can rename this sound.")
    title = " ".join((title or "").split())
    if not title:
        raise ValueError("A sound needs a title.")
    sound.title = title[:MAX_TITLE]
    return sound


async def trending_sounds(session: AsyncSession, days: float = 7.0, limit: int = 10) -> list[tuple[Sound, int, int]]:
    """(sound, published videos using it made in the last ``days``, all published uses), most new uses first."""
    since = utcnow() - timedelta(days=days)
    recent = (await session.execute(
        select(VideoSound.sound_id, func.count()).join(Video, Video.id == VideoSound.video_id)
        .where(Video.created_at >= since, *published_clause())
        .group_by(VideoSound.sound_id).order_by(func.count().desc()).limit(limit)
    )).all()
    if not recent:
        return []
    ids = [sound_id for sound_id, _ in recent]
    sounds = {s.id: s for s in (await session.execute(select(Sound).where(Sound.id.in_(ids)))).scalars()}
    usage = await published_usage(session, ids)
    return [(sounds[sid], n, usage.get(sid, n)) for sid, n in recent if sid in sounds]
