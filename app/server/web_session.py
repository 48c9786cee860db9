"""Server-side sessions and CSRF protection.

The browser holds a random token in an HttpOnly cookie; the database holds only its SHA-256. Each session
has a CSRF token that every state-changing request must echo: htmx sends it as the ``X-CSRF-Token`` header,
plain forms as a ``csrf_token`` field, and the beacon endpoint (``opt={"csrf_in_body": True}``) checks it
inside its JSON body itself. At login and sign-up the session id is rotated (a fresh token, the old row
deleted), so a token planted before login is worthless after it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from litestar import Request
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy import delete, select

from app.db.engine import Database
from app.db.models import AuthSession, Event, User, utcnow
from app.server.limits import replaying_receive

COOKIE_NAME = "foryou_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FORM_BYTES = 64 * 1024
_TOUCH_EVERY = timedelta(minutes=5)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class WebSession:
    token_hash: str
    csrf_token: str
    user: User | None
    new_token: str | None = None  # set when the cookie must be (re)issued

    @property
    def user_id(self) -> str | None:
        return self.user.id if self.user else None

    @property
    def is_signed_in(self) -> bool:
        return self.user is not None and not self.user.is_guest

    def csrf_matches(self, candidate: str | None) -> bool:
        return bool(candidate) and hmac.compare_digest(candidate, self.csrf_token)


def web_session_of(request: Request) -> WebSession:
    """This request's session (the session middleware put it there). Handlers receive it as ``web_session``."""
    return request.scope["state"]["web_session"]


def replace_web_session(request: Request, new: WebSession) -> None:
    """After a rotation the response must carry the new cookie (the session middleware sets it)."""
    request.scope["state"]["web_session"] = new


class SessionStore:
    def __init__(self, db: Database, session_days: int) -> None:
        self.db = db
        self.lifetime = timedelta(days=session_days)

    async def load(self, token: str | None) -> WebSession | None:
        if not token:
            return None
        token_hash = hash_token(token)
        async with self.db.read() as session:
            row = (
                await session.execute(
                    select(AuthSession, User).outerjoin(User, AuthSession.user_id == User.id)
                    .where(AuthSession.token_hash == token_hash)
                )
            ).first()
        if row is None:
            return None
        auth, user = row
        now = utcnow()
        if auth.expires_at <= now or (user is not None and user.status == "banned"):
            await self.destroy(token_hash)
            return None
        if now - auth.last_seen_at > _TOUCH_EVERY:
            async with self.db.write() as session:
                live = await session.get(AuthSession, token_hash)
                if live is not None:
                    live.last_seen_at = now
                    live.expires_at = now + self.lifetime
        return WebSession(token_hash=token_hash, csrf_token=auth.csrf_token, user=user)

    async def create(self, user: User | None) -> WebSession:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = utcnow()
        async with self.db.write() as session:
            session.add(
                AuthSession(
                    token_hash=hash_token(token),
                    user_id=user.id if user else None,
                    csrf_token=csrf,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + self.lifetime,
                )
            )
        return WebSession(token_hash=hash_token(token), csrf_token=csrf, user=user, new_token=token)

    async def sweep_idle(self, guest_idle_days: int) -> dict[str, int]:
        """Remove expired sessions, sessions of visitors (no user, or a guest) idle for ``guest_idle_days``,
        and guest users left with no session and no events (nobody can come back as them)."""
        now = utcnow()
        idle_since = now - timedelta(days=guest_idle_days)
        guests = select(User.id).where(User.is_guest.is_(True))
        async with self.db.write() as session:
            expired = await session.execute(delete(AuthSession).where(AuthSession.expires_at <= now))
            idle = await session.execute(delete(AuthSession).where(
                AuthSession.last_seen_at < idle_since,
                AuthSession.user_id.is_(None) | AuthSession.user_id.in_(guests)))
            orphans = await session.execute(delete(User).where(
                User.is_guest.is_(True), User.created_at < idle_since,
                ~User.id.in_(select(AuthSession.user_id).where(AuthSession.user_id.is_not(None))),
                ~User.id.in_(select(Event.user_id).where(Event.user_id.is_not(None)))))
        return {"expired_sessions": expired.rowcount or 0, "idle_guest_sessions": idle.rowcount or 0,
                "guest_users": orphans.rowcount or 0}

    async def destroy(self, token_hash: str) -> None:
        async with self.db.write() as session:
            await session.execute(delete(AuthSession).where(AuthSession.token_hash == token_hash))

    async def rotate(self, current: WebSession, user: User | None) -> WebSession:
        """Issue a fresh session id for ``user`` and drop the old one (login, sign-up, logout)."""
        await self.destroy(current.token_hash)
        return await self.create(user)

    async def attach_user(self, current: WebSession, user: User) -> None:
        """Bind a newly created guest to this session without rotating (nothing was elevated)."""
        async with self.db.write() as session:
            live = await session.get(AuthSession, current.token_hash)
            if live is not None:
                live.user_id = user.id
        current.user = user


def _cookie_from_scope(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header is just no session
                return None
            morsel = jar.get(COOKIE_NAME)
            return morsel.value if morsel else None
    return None


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return value.decode("latin-1")
    return None


def set_cookie_header(token: str, secure: bool, max_age: int) -> tuple[bytes, bytes]:
    parts = [f"{COOKIE_NAME}={token}", "Path=/", "HttpOnly", "SameSite=Lax", f"Max-Age={max_age}"]
    if secure:
        parts.append("Secure")
    return b"set-cookie", "; ".join(parts).encode()


async def _send_plain(send: Send, status: int, text: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": text.encode()})


class SessionMiddleware(ASGIMiddleware):
    """Loads (or starts) the visitor's session, enforces CSRF, and (re)issues the cookie when needed."""

    scopes = (ScopeType.HTTP,)
    # Static files and probes need no session (a callable, not a path pattern: see Litestar's deprecation note);
    # nor does the JSON API (/api/v1), whose callers present tokens, not cookies, so CSRF does not apply to it.
    should_bypass_for_scope = staticmethod(lambda scope: scope["path"].startswith(
        ("/static/", "/healthz", "/readyz", "/api/v1/", "/schema")))

    def __init__(self, store: SessionStore, secure_cookies: bool) -> None:
        self.store = store
        self.secure_cookies = secure_cookies

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        web_session = await self.store.load(_cookie_from_scope(scope)) or await self.store.create(None)
        scope.setdefault("state", {})["web_session"] = web_session

        method = scope["method"]
        route_handler = scope.get("route_handler")
        csrf_in_body = bool(route_handler and route_handler.opt.get("csrf_in_body"))
        if method not in SAFE_METHODS and not csrf_in_body:
            candidate = _header(scope, CSRF_HEADER.encode())
            content_type = (_header(scope, b"content-type") or "").split(";")[0].strip()
            if candidate is None and content_type == "application/x-www-form-urlencoded":
                body, receive = await _buffer_body(receive)
                fields = parse_qs(body.decode("utf-8", "replace"))
                candidate = (fields.get(CSRF_FIELD) or [None])[0]
            if not web_session.csrf_matches(candidate):
                await _send_plain(send, 403, "Missing or invalid CSRF token: reload the page and try again.")
                return

        max_age = int(self.store.lifetime.total_seconds())

        async def send_with_cookie(message: Message) -> None:
            current: WebSession = scope["state"]["web_session"]
            if message["type"] == "http.response.start" and current.new_token:
                headers = list(message.get("headers", []))
                headers.append(set_cookie_header(current.new_token, self.secure_cookies, max_age))
                message = {**message, "headers": headers}
            await send(message)

        await next_app(scope, receive, send_with_cookie)


async def _buffer_body(receive: Receive) -> tuple[bytes, Receive]:
    """Read a small form body (to find its CSRF field) and hand an identical stream downstream."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            break
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    return body, replaying_receive(body, receive)
