"""The JSON API's tables: personal access tokens, and the recommendation lists its cursors page through.

Imported at the bottom of ``app.db.models`` so that Alembic sees them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from app.db.models import new_id, utcnow


def _json(default: Any) -> Any:
    return Field(default_factory=lambda: default.copy(), sa_column=Column(JSON, nullable=False))


class ApiToken(SQLModel, table=True):
    """A personal access token. Only the SHA-256 of the secret is kept (the secret is 256 random bits, so a
    fast hash is enough); the prefix lets its owner tell tokens apart on the settings page."""

    __tablename__ = "api_tokens"

    id: str = Field(default_factory=lambda: new_id("t_"), primary_key=True, max_length=32)
    user_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE", max_length=32)
    name: str = Field(default="", max_length=64)
    token_hash: str = Field(unique=True, max_length=64)
    prefix: str = Field(max_length=16)
    scopes: list = _json([])  # "read", "write"
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = Field(default=None)
    revoked_at: datetime | None = Field(default=None)


class ApiFeed(SQLModel, table=True):
    """One client's run through its recommendations: the ordered picks served so far (appended to as the client
    pages on). A cursor is a signed (feed id, offset), so pages never repeat or skip, across processes too."""

    __tablename__ = "api_feeds"

    id: str = Field(default_factory=lambda: new_id("f_"), primary_key=True, max_length=32)
    user_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE", max_length=32)
    items: list = _json([])  # [{"video_id", "score", "reason", "reasons", "source"}, ...]
    exhausted: bool = Field(default=False)  # the recommender had nothing more to add
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow, index=True)
