"""Sounds: one row per distinct audio track, the landmarks that identify it, and which videos use it.

A sound is born with the first video whose audio matches no known sound (its "original video"; its creator
names it). Later videos whose audio lines up with its landmarks, or whose creator picked it at upload, use it.
Imported at the bottom of ``app.db.models`` so that Alembic sees these tables.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from app.db.models import new_id, utcnow


class Sound(SQLModel, table=True):
    __tablename__ = "sounds"

    id: str = Field(default_factory=lambda: new_id("s_"), primary_key=True, max_length=32)
    title: str = Field(default="", max_length=100)
    # The first uploader names the sound; the sound outlives their video and their account.
    creator_id: str | None = Field(default=None, foreign_key="users.id", index=True, ondelete="SET NULL")
    original_video_id: str | None = Field(default=None, foreign_key="videos.id", ondelete="SET NULL")
    seconds: float = Field(default=0.0)
    landmarks: int = Field(default=0)  # how many hashes identify it (the denominator of a match's share)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class SoundHash(SQLModel, table=True):
    """The landmark index (``media.fingerprint``): the primary key leads with the hash, so lookups are by hash."""

    __tablename__ = "sound_hashes"

    hash: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    sound_id: str = Field(foreign_key="sounds.id", primary_key=True, ondelete="CASCADE", index=True, max_length=32)
    frame: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})


class VideoSound(SQLModel, table=True):
    __tablename__ = "video_sounds"

    video_id: str = Field(foreign_key="videos.id", primary_key=True, ondelete="CASCADE", max_length=32)
    sound_id: str = Field(foreign_key="sounds.id", index=True, ondelete="CASCADE", max_length=32)
    how: str = Field(default="original", max_length=16)  # original | matched | chosen (use this sound)
    matches: int = Field(default=0)  # aligned landmarks shared with the sound
    offset_s: float = Field(default=0.0)  # where this video's audio starts in the sound
    created_at: datetime = Field(default_factory=utcnow)
