"""The beacon endpoint: batches of watch-time and impression events from the feed page."""

from __future__ import annotations

from litestar import Controller, Request, Response, post
from litestar.exceptions import InternalServerException
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Video
from app.domain.accounts.services import AccountService
from app.domain.events.schemas import EventValidationError, parse_beacon_batch
from app.domain.events.writer import EventIn, EventWriter
from app.server.limits import JsonBodyError, parse_json
from app.server.ratelimit import BeaconLimits
from app.server.web_session import WebSession

MAX_BEACON_BYTES = 256 * 1024


def _problem(status: int, message: str, problems: list[str] | None = None) -> Response:
    return Response({"error": message, "problems": problems or []}, status_code=status)


class EventController(Controller):
    path = "/api/events"

    # sendBeacon cannot set headers, so the CSRF token travels inside the JSON body and is checked here.
    @post("/", opt={"csrf_in_body": True}, request_max_body_size=MAX_BEACON_BYTES, status_code=202)
    async def ingest(self, request: Request, db: Database, accounts: AccountService, events: EventWriter,
                     web_session: WebSession, beacon_limits: BeaconLimits) -> Response:
        try:
            raw = await request.body()
        except InternalServerException:  # the tab closed mid-beacon; its outbox sends the events again
            return _problem(400, "The request body did not arrive.")
        try:
            payload = parse_json(raw)
        except JsonBodyError as exc:
            return _problem(exc.status, str(exc))
        # Each event costs a token from the visitor's and the address's buckets; beyond them the page's outbox
        # keeps the events and sends them again after Retry-After.
        count = len(payload["events"]) if isinstance(payload, dict) and isinstance(payload.get("events"), list) else 1
        address = request.client.host if request.client else "unknown"
        wait = beacon_limits.admit(web_session.token_hash, address, count)
        if wait:
            response = _problem(429, f"Too many events; send them again in {wait} s.")
            response.headers["Retry-After"] = str(wait)
            return response
        try:
            csrf, batch = parse_beacon_batch(payload)
        except EventValidationError as exc:
            return _problem(422, "Some events are invalid; none were stored.", exc.problems)
        if not web_session.csrf_matches(csrf):
            return _problem(403, "Missing or invalid CSRF token.")
        video_ids = {event.video_id for event in batch}
        query = select(Video.__table__.c.id, Video.__table__.c.creator_id).where(Video.__table__.c.id.in_(video_ids))
        creators = dict(await db.read_sync(lambda session: session.execute(query).all()))
        unknown = sorted(video_ids - set(creators))
        if unknown:
            return _problem(422, "Some events are invalid; none were stored.",
                            [f"Unknown video id {vid!r}." for vid in unknown])
        user = await accounts.ensure_visitor(web_session)
        stored = await events.submit(
            [
                EventIn(
                    event_id=event.event_id,
                    event_type=event.event_type,
                    user_id=user.id,
                    video_id=event.video_id,
                    creator_id=creators[event.video_id],
                    watch_duration=event.watch_duration,
                    additional_info=event.info,
                )
                for event in batch
            ]
        )
        new = sum(1 for item in stored if item.is_new)
        return Response({"accepted": new, "duplicates": len(stored) - new}, status_code=202)
