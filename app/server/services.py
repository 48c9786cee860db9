"""The app's long-lived objects, built once at start-up and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Request

from app.config import Settings
from app.db.engine import Database
from app.domain.accounts.services import AccountService, LoginRateLimiter
from app.domain.events.writer import EventWriter
from app.domain.feed.services import FeedService
from app.domain.videos.services import VideoService
from app.server.web_session import SessionStore, WebSession

# The media pipeline's steps, in order (each one a durable job row per video).
PIPELINE_STEPS = ("probe", "transcode", "frames", "visual_embed", "audio", "transcribe", "captions",
                  "text_embed", "index", "publish")


@dataclass
class Services:
    settings: Settings
    db: Database
    sessions: SessionStore
    accounts: AccountService
    events: EventWriter
    feed: FeedService
    videos: VideoService

    @classmethod
    def build(cls, settings: Settings) -> Services:
        db = Database(settings.resolved_database_url)
        sessions = SessionStore(db, settings.session_days)
        limiter = LoginRateLimiter(settings.login_attempts_per_minute)
        events = EventWriter(db, settings.event_batch_max, settings.event_flush_interval_ms / 1000)
        return cls(
            settings=settings,
            db=db,
            sessions=sessions,
            accounts=AccountService(db, sessions, limiter, settings.admin_usernames),
            events=events,
            feed=FeedService(db, events, settings.feed_page_size),
            videos=VideoService(settings, db, PIPELINE_STEPS),
        )


def services_of(request: Request) -> Services:
    return request.app.state.services


def web_session_of(request: Request) -> WebSession:
    return request.scope["state"]["web_session"]


def replace_web_session(request: Request, new: WebSession) -> None:
    """After a rotation the response must carry the new cookie (the session middleware sets it)."""
    request.scope["state"]["web_session"] = new
