"""Accounts: sign-up, login, logout, guests and their carry-over, login rate limiting."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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


_dummy_hash: str | None = None


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """Check a password; with no stored hash (unknown user, guest) a dummy hash is checked instead, so the
    answer takes as long as for a real account and does not tell which usernames exist."""
    global _dummy_hash  # noqa: PLW0603 - computed once, on first use (hashing takes a few hundred ms)

    def _verify() -> bool:
        global _dummy_hash  # noqa: PLW0603
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
        try:
            return _hasher.verify(stored_hash or _dummy_hash, password) and stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(_verify)


class LoginRateLimiter:
    """Failed logins within a sliding window, per key ("ip:...", "user:...", "device:..."), each with a limit.

    Memory stays bounded: past ``max_keys`` the keys whose last failure is oldest are forgotten first."""

    def __init__(self, limit: int, window_s: float = 60.0, max_keys: int = 50_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        stamps = self._failures.get(key)
        if stamps is None:
            return deque()
        while stamps and now - stamps[0] > self.window_s:
            stamps.popleft()
        return stamps

    def retry_after(self, *keys: str | tuple[str, int]) -> int:
        """Seconds until every key is under its limit (0: go ahead). A key may carry its own limit."""
        now = time.monotonic()
        waits = []
        for entry in keys:
            key, limit = entry if isinstance(entry, tuple) else (entry, self.limit)
            stamps = self._recent(key, now)
            if len(stamps) >= limit:
                waits.append(self.window_s - (now - stamps[-limit]))
        return int(max(waits)) + 1 if waits else 0

    def record_failure(self, *keys: str | tuple[str, int]) -> None:
        now = time.monotonic()
        for entry in keys:
            key = entry[0] if isinstance(entry, tuple) else entry
            stamps = self._recent(key, now)
            self._failures.pop(key, None)  # re-inserted last: the dict stays ordered by latest failure
            stamps.append(now)
            self._failures[key] = stamps
        while len(self._failures) > self.max_keys:
            self._failures.pop(next(iter(self._failures)))

    def reset(self, *keys: str | tuple[str, int]) -> None:
        for entry in keys:
            self._failures.pop(entry[0] if isinstance(entry, tuple) else entry, None)


DEVICE_COOKIE = "foryou_device"
DEVICE_COOKIE_DAYS = 365


@dataclass(frozen=True)
class DeviceCookies:
    """Signed "this browser has signed in as USER before" cookies (OWASP's device cookie pattern).

    A browser holding one for a username is judged by its own failures only, so an attacker who fails to
    guess a password from elsewhere locks out their own attempts, never the owner's known browser."""

    secret: bytes

    def _sign(self, payload: str) -> str:
        return hmac.new(self.secret, f"device:{payload}".encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self, username: str) -> str:
        payload = base64.urlsafe_b64encode(f"{username}:{secrets.token_hex(8)}".encode()).decode().rstrip("=")
        return f"{payload}.{self._sign(payload)}"

    def read(self, cookie: str | None) -> tuple[str, str] | None:
        """(username, device nonce) from a cookie whose signature holds, else None."""
        if not cookie or "." not in cookie or len(cookie) > 200:
            return None
        payload, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            username, nonce = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().split(":", 1)
        except (ValueError, UnicodeDecodeError):
            return None
        return username, nonce


class LoginThrottled(AccountError):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"Too many attempts. Try again in {retry_after_s} seconds.", 429)
        self.retry_after_s = retry_after_s


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
                 admin_usernames: tuple[str, ...] = (), devices: DeviceCookies | None = None,
                 per_address_limit: int | None = None) -> None:
        self.db = db
        self.sessions = sessions
        self.limiter = limiter
        self.admin_usernames = set(admin_usernames)
        self.devices = devices or DeviceCookies(secrets.token_bytes(32))
        self.per_address_limit = per_address_limit or limiter.limit * 4
        # ``async hook(session_key, guest)`` after a visitor's guest is created (see ensure_visitor).
        self.on_new_guest: list[Callable[[str, User], Awaitable[None]]] = []

    async def ensure_visitor(self, web_session: WebSession) -> User:
        """The session's user, creating a guest (and storing a pending session) on a visitor's first action:
        a read never does (see app.server.web_session). Then ``on_new_guest`` hooks run (the feed writes the
        impressions it held for the pending session)."""
        if web_session.user is not None:
            return web_session.user
        pending_key = web_session.token_hash
        guest = await self.sessions.materialize(web_session)
        for hook in self.on_new_guest:
            await hook(pending_key, guest)
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
                # A pending visitor (nothing stored yet) becomes the account under its guest id, if free.
                keep_id = (not web_session.persisted and web_session.visitor_id
                           and await session.get(User, web_session.visitor_id) is None)
                user = User(id=web_session.visitor_id) if keep_id else User()
                session.add(user)
            user.username = username
            user.display_name = (display_name or username).strip()[:64]
            user.password_hash = password_hash
            user.is_guest = False
            if username in self.admin_usernames:
                user.role = "admin"
        await self._adopt_pending(web_session, user)
        return user, await self.sessions.rotate(web_session, user)

    def login_limits(self, username: str, client: str, device_cookie: str | None) -> tuple[tuple[str, int], ...]:
        """The counters a login attempt is judged by. A known device (a browser that signed in as this user
        before) only by its own failures; any other browser by its address and by the username's shared
        counter for unknown browsers, which an attacker can fill but which never locks out a known device."""
        device = self.devices.read(device_cookie)
        if device and device[0] == username:
            return ((f"device:{device[1]}:{username}", self.limiter.limit),)
        return (f"ip:{client}", self.per_address_limit), (f"user:{username}", self.limiter.limit)

    async def log_in(self, web_session: WebSession, username: str, password: str,
                     client: str, device_cookie: str | None = None) -> tuple[User, WebSession]:
        username = normalise_username(username)
        keys = self.login_limits(username, client, device_cookie)
        wait = self.limiter.retry_after(*keys)
        if wait:
            raise LoginThrottled(wait)
        async with self.db.read() as session:
            user = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
        if not await verify_password(user.password_hash if user is not None else None, password) or user is None:
            self.limiter.record_failure(*keys)
            raise AccountError("Wrong username or password.", 401)
        if user.status == "banned":
            raise AccountError("This account has been suspended.", 403)
        self.limiter.reset(keys[-1])
        guest = web_session.user if web_session.user and web_session.user.is_guest else None
        if guest is not None:
            await self.merge_guest_into(guest.id, user.id)
        await self._adopt_pending(web_session, user)
        return user, await self.sessions.rotate(web_session, user)

    async def _adopt_pending(self, web_session: WebSession, user: User) -> None:
        """A pending visitor who signs up or logs in: what was held for it (impressions) goes to the account."""
        if not web_session.persisted and web_session.user is None:
            for hook in self.on_new_guest:
                await hook(web_session.token_hash, user)

    async def log_out(self, web_session: WebSession) -> WebSession:
        return await self.sessions.rotate(web_session, None)

    async def merge_guest_into(self, guest_id: str, user_id: str) -> None:
        """A guest who logs in to an existing account: their activity moves to that account."""
        async with self.db.write() as session:
            # Event ids are unique per user: a guest event whose id the account already has is the same event.
            await session.execute(delete(Event).where(
                Event.user_id == guest_id,
                Event.event_id.in_(select(Event.event_id).where(Event.user_id == user_id).scalar_subquery())))
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
