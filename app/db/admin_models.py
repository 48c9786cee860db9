"""Tables of the operator side: settings edited on the admin pages, experiments, moderation and alerts.

Imported at the bottom of ``app.db.models`` so that Alembic sees them. Nothing here holds a user's personal
data beyond ids needed for an audit trail, and account deletion scrubs those (see ``app.domain.privacy``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from app.db.models import utcnow


def _json(default: Any) -> Any:
    return Field(default_factory=lambda: default.copy(), sa_column=Column(JSON, nullable=False))


class AdminSetting(SQLModel, table=True):
    """Operator-editable settings: the promoted recommender overrides, alert thresholds, CLIP prompts."""

    __tablename__ = "admin_settings"

    key: str = Field(primary_key=True, max_length=64)
    value: dict = _json({})
    updated_at: datetime = Field(default_factory=utcnow)


class Experiment(SQLModel, table=True):
    """An A/B test: variants (name, weight, recommender overrides); users are assigned by hashing."""

    __tablename__ = "experiments"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    description: str = Field(default="", max_length=500)
    salt: str = Field(max_length=32)
    status: str = Field(default="running", max_length=16, index=True)  # running | stopped
    variants: list = _json([])  # [{"name": "control", "weight": 1.0, "overrides": {}}]
    promoted_variant: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime = Field(default_factory=utcnow)
    stopped_at: datetime | None = Field(default=None)


class BlockedTerm(SQLModel, table=True):
    """Words that send an upload to review when they appear in its caption or transcript."""

    __tablename__ = "blocked_terms"

    term: str = Field(primary_key=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class ModerationFlag(SQLModel, table=True):
    """An automated flag raised before publication; the video waits for review while it is open."""

    __tablename__ = "moderation_flags"

    id: int | None = Field(default=None, primary_key=True)
    video_id: str = Field(foreign_key="videos.id", index=True, ondelete="CASCADE")
    source: str = Field(max_length=16)  # terms | clip
    details: dict = _json({})
    status: str = Field(default="open", max_length=16, index=True)  # open | approved | rejected
    created_at: datetime = Field(default_factory=utcnow)


class ModerationAction(SQLModel, table=True):
    """The audit log: every moderation action, who took it, on what, and why."""

    __tablename__ = "moderation_actions"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=64)  # the admin's username, or "system" for automated flags
    action: str = Field(max_length=32)
    target_type: str = Field(max_length=16)  # video | user | term | report
    target_id: str = Field(max_length=64, index=True)
    note: str = Field(default="", max_length=500)
    details: dict = _json({})


class AdminAlert(SQLModel, table=True):
    """A threshold alert that fired (shown on the dashboard, also logged)."""

    __tablename__ = "admin_alerts"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    name: str = Field(max_length=48)
    value: float
    threshold: float
    message: str = Field(max_length=300)
