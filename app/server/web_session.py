"""Server-side sessions and CSRF protection.

The browser holds a random token in an HttpOnly cookie; the database holds only its SHA-256. Each session
has a CSRF token that every state-changing request must echo: htmx sends it as the ``X-CSRF-Token`` header,
plain forms as a ``csrf_token`` field, and the beacon endpoint (``opt={"csrf_in_body": True}``) checks it
inside its JSON body itself. At login and sign-up the session id is rotated (a fresh token, the old row
deleted), so a token planted before login is worthless after it.

A visitor who only reads costs no database write: a cookieless request gets a *pending* session, a fresh
token in the cookie and nothing stored. Its CSRF token and its future guest id are HMACs of the token's hash
under the server's secret, so they are the same on every request that presents the cookie, nobody without
the cookie (HttpOnly) can compute them, and no row is needed to check them. The row (and a guest user) is
written on the first interaction that needs one (``SessionStore.materialize``: a beacon, a like, onboarding).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy import String, bindparam, delete, exists, literal, select
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from app.db.engine import Database, Prepared
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
    persisted: bool = True  # False: a pending session (no row yet, see the module's docstring)
    visitor_id: str | None = None  # a pending session's future guest id (recommendations, impressions)

    @property
    def user_id(self) -> str | None:
        return self.user.id if self.user else None

    @property
    def viewer_id(self) -> str | None:
        """Who is looking: the user, or the guest this pending visitor will become."""
        return self.user.id if self.user else self.visitor_id

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


def _insert(dialect: str, table):  # noqa: ANN001, ANN202 - a dialect's INSERT construct
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _lookup():  # noqa: ANN202 - a Core SELECT
    """A session's row and user (NULLs when it has none) and whether ``:visitor_id`` names a user, as one row:
    both lookups outer-joined to a one-row FROM, so a cookie costs one statement. Core, not ORM entities: the
    ORM's loading was most of the lookup's cost (the user is made an ORM object only when there is one)."""
    auth, user = AuthSession.__table__, User.__table__
    taken_by = user.alias("taken_by")
    one = select(literal(1).label("one")).subquery("one")
    return (select(auth.c.token_hash.label("auth_token_hash"), auth.c.csrf_token.label("auth_csrf_token"),
                   auth.c.last_seen_at.label("auth_last_seen_at"), auth.c.expires_at.label("auth_expires_at"),
                   *(user.c[key].label(f"user__{key}") for key, _ in _USER_ATTRIBUTES),
                   exists().where(taken_by.c.id == bindparam("visitor_id", type_=String())).label("taken"))
            .select_from(one)
            .outerjoin(auth, auth.c.token_hash == bindparam("token_hash", type_=String()))
            .outerjoin(user, auth.c.user_id == user.c.id))


# (attribute, column name) of every column of users: a looked-up user has them all, as an ORM-loaded one would.
_USER_ATTRIBUTES = [(prop.key, prop.columns[0].key) for prop in User.__mapper__.column_attrs]
_LOOKUP = Prepared(_lookup())
_USER_FIELDS = [(attribute, _LOOKUP.keys.index(f"user__{column}")) for attribute, column in _USER_ATTRIBUTES]


def _detached_user(row) -> User:  # noqa: ANN001 - a row of _LOOKUP
    """The row's user as the ORM would have loaded it in a session since closed: detached, nothing expired."""
    user = User.__mapper__.class_manager.new_instance()
    for attribute, index in _USER_FIELDS:
        set_committed_value(user, attribute, row[index])
    make_transient_to_detached(user)
    return user


class SessionStore:
    def __init__(self, db: Database, session_days: int, secret: bytes | None = None) -> None:
        self.db = db
        self.lifetime = timedelta(days=session_days)
        self.secret = secret or secrets.token_bytes(32)

    def _derive(self, purpose: str, token_hash: str) -> str:
        return hmac.digest(self.secret, f"{purpose}:{token_hash}".encode(), "sha256").hex()  # one-shot: C only

    def pending(self, token: str | None = None) -> WebSession:
        """A session with nothing stored: for ``token`` (a cookie with no row), or a new one (cookie issued)."""
        new_token = None if token else secrets.token_urlsafe(32)
        token_hash = hash_token(token or new_token)
        return WebSession(token_hash=token_hash, csrf_token=self._derive("csrf", token_hash), user=None,
                          new_token=new_token, persisted=False,
                          visitor_id="u_" + self._derive("visitor", token_hash)[:12])

    async def load_or_pending(self, token: str | None) -> WebSession:
        """This request's session: its row, else a pending one (reads only, never a write but the touch).

        One statement: the row lookup and whether the token's guest id is taken (used when there is no row: a
        token whose guest once existed, its row swept or rotated away, e.g. at sign-up where the guest became
        the account, must not come back as that user: it starts over with a fresh token)."""
        if not token:
            return self.pending()
        candidate = self.pending(token)
        params = {"token_hash": candidate.token_hash, "visitor_id": candidate.visitor_id}
        (row,) = await self.db.fetch(_LOOKUP, params)
        if row.auth_token_hash is not None:
            user = _detached_user(row) if row.user__id is not None else None
            loaded = await self._check(candidate.token_hash, row.auth_csrf_token, row.auth_last_seen_at,
                                       row.auth_expires_at, user)
            if loaded is not None:
                return loaded
            return self.pending()
        return self.pending() if row.taken else candidate

    async def materialize(self, current: WebSession) -> User:
        """Store a pending session with its guest (one write transaction); the guest of any session that has
        none. Idempotent under concurrent requests of the same browser."""
        if current.user is not None:
            return current.user
        now = utcnow()
        async with self.db.write() as session:
            row = await session.get(AuthSession, current.token_hash)
            if row is not None and row.user_id is not None:  # a concurrent request got there first
                guest = await session.get(User, row.user_id)
            else:
                guest_id = current.visitor_id or None
                if guest_id is None or await session.get(User, guest_id) is not None:
                    guest_id = None
                guest = User(is_guest=True, display_name="Guest", **({"id": guest_id} if guest_id else {}))
                session.add(guest)
                await session.flush()
                if row is not None:
                    row.user_id = guest.id
                else:
                    await session.execute(_insert(session.bind.dialect.name, AuthSession).values(
                        token_hash=current.token_hash, user_id=guest.id, csrf_token=current.csrf_token,
                        created_at=now, last_seen_at=now, expires_at=now + self.lifetime,
                    ).on_conflict_do_nothing())
        current.user = guest
        current.persisted = True
        return guest

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
        return await self._check(token_hash, auth.csrf_token, auth.last_seen_at, auth.expires_at, user)

    async def _check(self, token_hash: str, csrf_token: str, last_seen_at: datetime, expires_at: datetime,
                     user: User | None) -> WebSession | None:
        """A stored session as this request's, unless expired or its user banned (then removed); touched
        every few minutes (its expiry slides)."""
        now = utcnow()
        if expires_at <= now or (user is not None and user.status == "banned"):
            await self.destroy(token_hash)
            return None
        if now - last_seen_at > _TOUCH_EVERY:
            async with self.db.write() as session:
                live = await session.get(AuthSession, token_hash)
                if live is not None:
                    live.last_seen_at = now
                    live.expires_at = now + self.lifetime
        return WebSession(token_hash=token_hash, csrf_token=csrf_token, user=user)

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
        """Issue a fresh session id for ``user`` and drop the old one (login, sign-up, logout). Without a user
        (logout, account deleted) the new session is a pending one: nothing stored until it is needed."""
        if current.persisted:
            await self.destroy(current.token_hash)
        return await self.create(user) if user is not None else self.pending()


def _cookie_from_scope(scope: Scope) -> str | None:
    # Litestar's own parse (kept in the scope for the request's later ``request.cookies``): http.cookies'
    # SimpleCookie took ~30 us a request on a busy box, and gave up on the whole header over one odd cookie.
    return ASGIConnection(scope).cookies.get(COOKIE_NAME) or None


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
        web_session = await self.store.load_or_pending(_cookie_from_scope(scope))
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
