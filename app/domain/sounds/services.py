"""Sounds: which known sound a processed video's audio is, or a new sound if it is none.

Matching uses ``media.fingerprint``: the video's landmark hashes are looked up in ``sound_hashes`` (indexed by
hash), candidates are lined up by time offset, and the best one that passes ``is_same_audio`` wins. A video that
matches nothing founds a new sound whose landmarks join the index. The whole decision is one write
transaction, so two uploads of the same new track processed at once still become one sound.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import User, Video
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


async def usage_counts(session: AsyncSession, sound_ids: list[str]) -> dict[str, int]:
    if not sound_ids:
        return {}
    rows = await session.execute(select(VideoSound.sound_id, func.count()).where(VideoSound.sound_id.in_(sound_ids))
                                 .group_by(VideoSound.sound_id))
    return dict(rows.all())
