"""Personal access tokens for the JSON API: created and revoked by their owner on the settings page.

A token is ``fy_`` plus 32 random bytes (URL-safe base64). Only its SHA-256 is stored: the secret has 256 bits
of entropy, so a fast hash cannot be brute-forced, and a lookup is one indexed equality. The owner sees the
secret once, when it is made.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select, update

from app.db.api_models import ApiToken
from app.db.engine import Database
from app.db.models import User, utcnow

SCOPES = ("read", "write")
PREFIX = "fy_"
MAX_TOKENS_PER_USER = 20
MAX_NAME = 64
TOUCH_EVERY_S = 60.0  # last_used_at is refreshed at most this often per token (not a write per call)


class TokenError(ValueError):
    pass


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # shown once


@dataclass(frozen=True)
class Caller:
    """Who is calling the API: the token's owner and what the token may do."""

    token_id: str
    user: User
    scopes: frozenset[str]


class TokenService:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._touched: dict[str, float] = {}

    async def create(self, user: User, name: str, scopes: list[str]) -> NewToken:
        chosen = [s for s in SCOPES if s in set(scopes)]
        if not chosen:
            raise TokenError("Pick at least one scope: read, write.")
        name = " ".join((name or "").split())[:MAX_NAME] or "API token"
        secret = PREFIX + secrets.token_urlsafe(32)
        async with self.db.write() as session:
            live = (await session.execute(select(ApiToken.id).where(
                ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)))).all()
            if len(live) >= MAX_TOKENS_PER_USER:
                raise TokenError(f"At most {MAX_TOKENS_PER_USER} tokens; revoke one first.")
            token = ApiToken(user_id=user.id, name=name, token_hash=hash_secret(secret),
                             prefix=secret[:len(PREFIX) + 6], scopes=chosen)
            session.add(token)
        return NewToken(token, secret)

    async def list_for(self, user: User) -> list[ApiToken]:
        async with self.db.read() as session:
            return list((await session.execute(select(ApiToken).where(ApiToken.user_id == user.id)
                                               .order_by(ApiToken.created_at.desc()))).scalars())

    async def revoke(self, user: User, token_id: str) -> bool:
        async with self.db.write() as session:
            result = await session.execute(update(ApiToken).where(
                ApiToken.id == token_id, ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None),
            ).values(revoked_at=utcnow()))
        return bool(result.rowcount)

    async def authenticate(self, secret: str) -> Caller | None:
        """The caller behind a bearer secret, or None (unknown, revoked, or the account is banned or gone)."""
        if not secret.startswith(PREFIX) or len(secret) > 128:
            return None
        async with self.db.read() as session:
            row = (await session.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id).where(
                ApiToken.token_hash == hash_secret(secret), ApiToken.revoked_at.is_(None)))).first()
        if row is None:
            return None
        token, user = row
        if user.status == "banned" or user.is_guest:
            return None
        now = time.monotonic()
        if now - self._touched.get(token.id, -TOUCH_EVERY_S) >= TOUCH_EVERY_S:
            self._touched[token.id] = now
            async with self.db.write() as session:
                await session.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=utcnow()))
        return Caller(token.id, user, frozenset(token.scopes or []))
