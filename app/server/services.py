"""The app's long-lived objects, built once at start-up and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Request

from app.config import Settings
from app.db.engine import Database
from app.domain.accounts.services import AccountService, LoginRateLimiter
from app.domain.events.writer import EventWriter
from app.server.web_session import SessionStore, WebSession


@dataclass
class Services:
    settings: Settings
    db: Database
    sessions: SessionStore
    accounts: AccountService
    events: EventWriter

    @classmethod
    def build(cls, settings: Settings) -> Services:
        db = Database(settings.resolved_database_url)
        sessions = SessionStore(db, settings.session_days)
        limiter = LoginRateLimiter(settings.login_attempts_per_minute)
        return cls(
            settings=settings,
            db=db,
            sessions=sessions,
            accounts=AccountService(db, sessions, limiter, settings.admin_usernames),
            events=EventWriter(db, settings.event_batch_max, settings.event_flush_interval_ms / 1000),
        )


def services_of(request: Request) -> Services:
    return request.app.state.services


def web_session_of(request: Request) -> WebSession:
    return request.scope["state"]["web_session"]


def replace_web_session(request: Request, new: WebSession) -> None:
    """After a rotation the response must carry the new cookie (the session middleware sets it)."""
    request.scope["state"]["web_session"] = new
