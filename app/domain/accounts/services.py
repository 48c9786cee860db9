"""Accounts: sign-up, login, logout, guests and their carry-over, login rate limiting."""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict, deque

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update

from app.db.engine import Database
from app.db.models import Event, Follow, HiddenCreator, HiddenVideo, Like, Save, User, ViewingSession
from app.server.web_session import SessionStore, WebSession

USERNAME_RE = re.compile(r"^[a-z0-9_.]{3,24}$")
MIN_PASSWORD = 8
_hasher = PasswordHasher()


class AccountError(ValueError):
    """A sign-up or login problem with a message fit to show the user."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored_hash: str, password: str) -> bool:
    def _verify() -> bool:
        try:
            return _hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(_verify)


class LoginRateLimiter:
    """At most ``limit`` failed logins per minute per client address and per username."""

    def __init__(self, limit: int, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str, now: float) -> deque[float]:
        stamps = self._failures[key]
        while stamps and now - stamps[0] > self.window_s:
            stamps.popleft()
        return stamps

    def retry_after(self, *keys: str) -> int:
        now = time.monotonic()
        waits = [
            self.window_s - (now - stamps[0])
            for key in keys
            if len(stamps := self._recent(key, now)) >= self.limit
        ]
        return int(max(waits)) + 1 if waits else 0

    def record_failure(self, *keys: str) -> None:
        now = time.monotonic()
        for key in keys:
            self._recent(key, now).append(now)

    def reset(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)


def normalise_username(raw: str) -> str:
    return (raw or "").strip().lower().lstrip("@")


def check_new_credentials(username: str, password: str) -> None:
    if not USERNAME_RE.match(username):
        raise AccountError("Usernames are 3-24 characters: lowercase letters, digits, '_' and '.'.")
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"Passwords need at least {MIN_PASSWORD} characters.")
    if len(password) > 256:
        raise AccountError("That password is too long (256 characters at most).")


class AccountService:
    def __init__(self, db: Database, sessions: SessionStore, limiter: LoginRateLimiter,
                 admin_usernames: tuple[str, ...] = ()) -> None:
        self.db = db
        self.sessions = sessions
        self.limiter = limiter
        self.admin_usernames = set(admin_usernames)

    async def ensure_visitor(self, web_session: WebSession) -> User:
        """The session's user, creating a guest on a visitor's first action."""
        if web_session.user is not None:
            return web_session.user
        async with self.db.write() as session:
            guest = User(is_guest=True, display_name="Guest")
            session.add(guest)
        await self.sessions.attach_user(web_session, guest)
        return guest

    async def sign_up(self, web_session: WebSession, username: str, password: str,
                      display_name: str = "") -> tuple[User, WebSession]:
        username = normalise_username(username)
        check_new_credentials(username, password)
        password_hash = await hash_password(password)
        async with self.db.write() as session:
            taken = (await session.execute(select(User.id).where(User.username == username))).first()
            if taken:
                raise AccountError("That username is taken.", 409)
            guest = web_session.user if web_session.user and web_session.user.is_guest else None
            # A guest's account becomes the real one: their events, likes and follows carry over as they are.
            user = await session.get(User, guest.id) if guest else None
            if user is None:
                user = User()
                session.add(user)
            user.username = username
            user.display_name = (display_name or username).strip()[:64]
            user.password_hash = password_hash
            user.is_guest = False
            if username in self.admin_usernames:
                user.role = "admin"
        return user, await self.sessions.rotate(web_session, user)

    async def log_in(self, web_session: WebSession, username: str, password: str,
                     client: str) -> tuple[User, WebSession]:
        username = normalise_username(username)
        keys = (f"ip:{client}", f"user:{username}")
        wait = self.limiter.retry_after(*keys)
        if wait:
            raise AccountError(f"Too many attempts. Try again in {wait} seconds.", 429)
        async with self.db.read() as session:
            user = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
        if user is None or not user.password_hash or not await verify_password(user.password_hash, password):
            self.limiter.record_failure(*keys)
            raise AccountError("Wrong username or password.", 401)
        if user.status == "banned":
            raise AccountError("This account has been suspended.", 403)
        self.limiter.reset(*keys)
        guest = web_session.user if web_session.user and web_session.user.is_guest else None
        if guest is not None:
            await self.merge_guest_into(guest.id, user.id)
        return user, await self.sessions.rotate(web_session, user)

    async def log_out(self, web_session: WebSession) -> WebSession:
        return await self.sessions.rotate(web_session, None)

    async def merge_guest_into(self, guest_id: str, user_id: str) -> None:
        """A guest who logs in to an existing account: their activity moves to that account."""
        async with self.db.write() as session:
            await session.execute(update(Event).where(Event.user_id == guest_id).values(user_id=user_id))
            await session.execute(
                update(ViewingSession).where(ViewingSession.user_id == guest_id).values(user_id=user_id)
            )
            for table, key in ((Like, "video_id"), (Save, "video_id"), (HiddenVideo, "video_id"),
                               (Follow, "creator_id"), (HiddenCreator, "creator_id")):
                owner = table.user_id if hasattr(table, "user_id") else table.follower_id
                rows = (await session.execute(select(table).where(owner == guest_id))).scalars().all()
                mine = {
                    getattr(r, key)
                    for r in (await session.execute(select(table).where(owner == user_id))).scalars()
                }
                for row in rows:
                    target = getattr(row, key)
                    await session.delete(row)
                    if target not in mine and target != user_id:
                        data = {c.name: getattr(row, c.name) for c in table.__table__.columns}
                        data["follower_id" if table is Follow else "user_id"] = user_id
                        session.add(table(**data))
            await session.execute(delete(User).where(User.id == guest_id))
