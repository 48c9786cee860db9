"""SQLModel tables: the seed's storage schema (users, content, append-only event log) plus what the app needs.

Times are timezone-aware UTC datetimes (SQLModel's UTCDateTime stores them portably). Ids of users and
videos are short random strings, the seed's STRING ids, safe to show in URLs.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from recommender import EVENT_TYPES as RECOMMENDER_EVENT_TYPES


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(6)}"


def _json(default: Any) -> Any:
    return Field(default_factory=lambda: default.copy(), sa_column=Column(JSON, nullable=False))


# The seed's event taxonomy (§2.1) plus impression and the undo events lives with the recommender.
EVENT_TYPES = RECOMMENDER_EVENT_TYPES


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: str = Field(default_factory=lambda: new_id("u_"), primary_key=True, max_length=32)
    # Guests have no username or password: a visitor id that can swipe and like before signing up.
    username: str | None = Field(default=None, unique=True, index=True, max_length=32)
    display_name: str = Field(default="", max_length=64)
    password_hash: str | None = Field(default=None, max_length=255)
    is_guest: bool = Field(default=True)
    role: str = Field(default="user", max_length=16)  # user | admin
    bio: str = Field(default="", max_length=280)
    avatar_path: str | None = Field(default=None, max_length=255)
    status: str = Field(default="active", max_length=16)  # active | warned | banned
    demographics: dict = _json({})  # age_group, location, language
    preferences: dict = _json({})  # categories, creators_followed, muted_words
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)


class AuthSession(SQLModel, table=True):
    """A server-side login session. Only the token's hash is stored; the id rotates at login."""

    __tablename__ = "auth_sessions"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: str | None = Field(default=None, foreign_key="users.id", index=True, ondelete="CASCADE")
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class Video(SQLModel, table=True):
    __tablename__ = "videos"
    # One creator cannot upload the same bytes twice (NULLs, videos from before the hash, never collide).
    __table_args__ = (Index("uq_videos_creator_content_hash", "creator_id", "content_hash", unique=True),)

    id: str = Field(default_factory=lambda: new_id("v_"), primary_key=True, max_length=32)
    creator_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow, index=True)  # the seed's upload timestamp
    caption: str = Field(default="", max_length=2200)
    hashtags: list = _json([])
    topic: str | None = Field(default=None, max_length=48, index=True)
    duration: float = Field(default=0.0)
    size_bytes: int = Field(default=0)
    width: int = Field(default=0)
    height: int = Field(default=0)
    # uploaded -> processing -> ready | failed ; moderation: ok | flagged | hidden | removed
    state: str = Field(default="processing", max_length=16, index=True)
    failure_reason: str | None = Field(default=None, max_length=500)
    moderation: str = Field(default="ok", max_length=16, index=True)
    language: str | None = Field(default=None, max_length=16)
    transcript: str = Field(default="")
    metadata_: dict = Field(
        default_factory=dict, sa_column=Column("metadata", JSON, nullable=False)
    )  # tags, description, audio_id, models that made the vectors
    ready_at: datetime | None = Field(default=None)
    # sha256 (hex) of the uploaded file's bytes, computed while it streamed to disk.
    content_hash: str | None = Field(default=None, max_length=64)


# Moderation states in which a ready video may be shown: never flagged, or flagged and approved on review.
PUBLISHED_MODERATION = ("ok", "flagged_ok")


def is_published(video: Video) -> bool:
    return video.state == "ready" and video.moderation in PUBLISHED_MODERATION


def published_clause() -> tuple:
    """The same rule as SQL conditions, for ``select(Video).where(*published_clause())``."""
    return (Video.state == "ready", Video.moderation.in_(PUBLISHED_MODERATION))


class Event(SQLModel, table=True):
    """The append-only event log (seed §2.2). ``event_id`` is client-supplied: unique per user, not globally
    (another user re-sending an id makes a new event, never a change to this one)."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("user_id", "event_id", name="uq_events_user_event"),
        Index("ix_events_user_time", "user_id", "timestamp"),
        Index("ix_events_video_type", "video_id", "event_type"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64, index=True)
    event_type: str = Field(max_length=24, index=True)
    # Nullable so that a deleted account's events can be irreversibly anonymised instead of kept.
    user_id: str | None = Field(default=None, max_length=32)
    video_id: str | None = Field(default=None, max_length=32)
    creator_id: str | None = Field(default=None, max_length=32)
    timestamp: datetime = Field(default_factory=utcnow, index=True)
    watch_duration: float | None = Field(default=None)
    session_id: int | None = Field(default=None)
    additional_info: dict = _json({})


class ViewingSession(SQLModel, table=True):
    """A run of activity by one user with no gap over 30 minutes (the seed's sessionization rule)."""

    __tablename__ = "viewing_sessions"

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    started_at: datetime = Field(default_factory=utcnow)
    last_event_at: datetime = Field(default_factory=utcnow)
    event_count: int = Field(default=0)
    watch_seconds: float = Field(default=0.0)


class Follow(SQLModel, table=True):
    __tablename__ = "follows"

    follower_id: str = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    creator_id: str = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class Like(SQLModel, table=True):
    __tablename__ = "likes"

    user_id: str = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    video_id: str = Field(foreign_key="videos.id", primary_key=True, ondelete="CASCADE", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class Save(SQLModel, table=True):
    __tablename__ = "saves"

    user_id: str = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    video_id: str = Field(foreign_key="videos.id", primary_key=True, ondelete="CASCADE", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class Comment(SQLModel, table=True):
    __tablename__ = "comments"

    id: int | None = Field(default=None, primary_key=True)
    video_id: str = Field(foreign_key="videos.id", index=True, ondelete="CASCADE")
    user_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    text: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    # One level of replies: a reply's parent is always a top-level comment (replies to a reply attach there).
    parent_id: int | None = Field(default=None, foreign_key="comments.id", index=True, ondelete="CASCADE")


class CommentLike(SQLModel, table=True):
    __tablename__ = "comment_likes"

    user_id: str = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    comment_id: int = Field(foreign_key="comments.id", primary_key=True, ondelete="CASCADE", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class HiddenVideo(SQLModel, table=True):
    __tablename__ = "hidden_videos"

    user_id: str = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    video_id: str = Field(foreign_key="videos.id", primary_key=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow)


class HiddenCreator(SQLModel, table=True):
    """'Not interested in this creator' and blocks: neither appears in the user's feeds again."""

    __tablename__ = "hidden_creators"

    user_id: str = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    creator_id: str = Field(foreign_key="users.id", primary_key=True, ondelete="CASCADE")
    kind: str = Field(default="not_interested", max_length=16)  # not_interested | blocked
    created_at: datetime = Field(default_factory=utcnow)


class Report(SQLModel, table=True):
    __tablename__ = "reports"
    __table_args__ = (UniqueConstraint("user_id", "video_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    video_id: str = Field(foreign_key="videos.id", index=True, ondelete="CASCADE")
    reason: str = Field(max_length=48)
    details: str = Field(default="", max_length=500)
    status: str = Field(default="open", max_length=16)  # open | dismissed | actioned
    created_at: datetime = Field(default_factory=utcnow)


class MediaJob(SQLModel, table=True):
    """One row per pipeline step of one video: the durable state of media processing."""

    __tablename__ = "media_jobs"
    __table_args__ = (UniqueConstraint("video_id", "step"), Index("ix_media_jobs_due", "status", "run_after"))

    id: int | None = Field(default=None, primary_key=True)
    video_id: str = Field(foreign_key="videos.id", index=True, ondelete="CASCADE")
    step: str = Field(max_length=32)
    position: int = Field(default=0)  # order of the step in the pipeline
    status: str = Field(default="pending", max_length=16)  # pending | running | succeeded | failed
    progress: float = Field(default=0.0)
    attempts: int = Field(default=0)
    error: str | None = Field(default=None, max_length=1000)
    result: dict = _json({})
    run_after: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = Field(default=None)
    finished_at: datetime | None = Field(default=None)
    # Which process runs the step, and until when its claim holds unless renewed by a heartbeat
    # (app.domain.videos.jobs): only an expired lease lets another worker take the step over.
    lease_owner: str | None = Field(default=None, max_length=96)
    lease_expires_at: datetime | None = Field(default=None)


class JobLease(SQLModel, table=True):
    """One row per periodic job: who runs it now, and when it last started, so that across every process
    of a deployment each job runs once per interval (app.server.scheduler)."""

    __tablename__ = "job_leases"

    name: str = Field(primary_key=True, max_length=64)
    owner: str | None = Field(default=None, max_length=96)
    expires_at: datetime | None = Field(default=None)
    last_started_at: datetime | None = Field(default=None)
    last_finished_at: datetime | None = Field(default=None)
    runs: int = Field(default=0)
    last_error: str | None = Field(default=None, max_length=500)


class RankerVersion(SQLModel, table=True):
    """Every trained ranker: the active one, retired ones (rollback targets) and rejected candidates."""

    __tablename__ = "ranker_versions"

    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    created_at: float
    status: str = Field(max_length=16)  # active | retired | rejected
    parent_version: int | None = Field(default=None)
    metrics: dict = _json({})
    n_train: int = Field(default=0)
    n_holdout: int = Field(default=0)
    note: str = Field(default="", max_length=500)
    blob: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class RecommenderSnapshot(SQLModel, table=True):
    """Outputs of one run of a periodic recommender job, published by the scheduler for every web replica to load
    (``recommender.published`` says what each job's bytes hold). Versions only grow; old ones are pruned."""

    __tablename__ = "recommender_snapshots"
    __table_args__ = (Index("ix_recommender_snapshots_job_version", "job", "version"),)

    version: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=48)
    created_at: datetime = Field(default_factory=utcnow)
    source: str = Field(default="", max_length=128)  # the replica id that computed it
    size_bytes: int = Field(default=0)
    summary: dict = _json({})
    blob: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


# Imported last so that Alembic sees them: operator tables (experiments, moderation, alerts), API, sounds.
from app.db import admin_models, api_models, sound_models  # noqa: E402, F401
