"""Creator analytics: /studio/analytics (all of a creator's videos) and /studio/analytics/{video} (one)."""

from __future__ import annotations

import time

from litestar import Controller, Request, Response, get
from litestar.exceptions import NotFoundException
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import User, Video
from app.domain.analytics import charts
from app.domain.analytics.service import CreatorReport, creator_report
from app.server.guards import require_account
from app.server.templating import render

PERIODS = (7, 28, 90)


def _days(request: Request) -> int:
    raw = request.query_params.get("days", "28")
    return int(raw) if raw.isdigit() and int(raw) in PERIODS else 28


async def _creator(request: Request, db: Database, user: User) -> User:
    """The signed-in creator, or (for admins) the creator named by ``?creator=``."""
    wanted = (request.query_params.get("creator") or "").lstrip("@").lower()
    if not wanted or user.role != "admin" or wanted == user.username:
        return user
    async with db.read() as session:
        creator = (await session.execute(select(User).where(User.username == wanted))).scalar_one_or_none()
    if creator is None:
        raise NotFoundException("No creator by that name.")
    return creator


def report_charts(report: CreatorReport) -> dict:
    unit = report.retention_unit
    if unit == "s":
        labels = [f"{i}s" for i in range(len(report.retention))]
    else:
        labels = [f"{round(i * 100 / max(len(report.retention) - 1, 1))}%" for i in range(len(report.retention))]
    return {
        "views": charts.line_chart(report.labels, [charts.Series("Views", report.daily_views)],
                                   title=f"Views per day, last {report.days} days"),
        "watch": charts.bar_chart(report.labels, report.daily_watch_minutes, title="Minutes watched per day",
                                  fmt=charts.fmt_number, width=380, height=240),
        "engagement": charts.bar_chart(report.labels, report.daily_engagements, width=380, height=240,
                                       title="Likes, comments, shares, saves and follows per day"),
        "retention": charts.line_chart(labels, [charts.Series("Still watching", report.retention)],
                                       title="Audience retention: share of viewers still watching",
                                       fmt=charts.fmt_percent, y_max=1.0),
        "traffic": charts.hbar_chart(list(report.traffic.items()), title="Views by traffic source")
        if report.traffic else None,
        "impressions": charts.hbar_chart(list(report.impression_traffic.items()), title="Impressions by feed")
        if report.impression_traffic else None,
    }


class CreatorAnalyticsController(Controller):
    path = "/studio/analytics"

    @get("/")
    async def overview(self, request: Request, db: Database) -> Response:
        user = require_account(request)
        creator = await _creator(request, db, user)
        report = await creator_report(db, creator, time.time(), _days(request))
        return render(request, "analytics/creator.html", {"report": report, "charts": report_charts(report),
                                                           "periods": PERIODS, "creator": creator})

    @get("/{video_id:str}")
    async def video(self, request: Request, video_id: str, db: Database) -> Response:
        user = require_account(request)
        async with db.read() as session:
            video = await session.get(Video, video_id)
        if video is None or (video.creator_id != user.id and user.role != "admin"):
            raise NotFoundException()
        async with db.read() as session:
            creator = await session.get(User, video.creator_id)
        report = await creator_report(db, creator, time.time(), _days(request), video_id=video.id)
        if report.video is None:
            raise NotFoundException("Analytics appear once the video is ready.")
        return render(request, "analytics/video.html", {"report": report, "charts": report_charts(report),
                                                         "periods": PERIODS, "video": video, "creator": creator})
