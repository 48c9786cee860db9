"""Analytics over the event log: the operator dashboard's figures and each creator's studio analytics.

Platform metrics reuse ``recommender.metrics`` (DAU, retention, session length, CTR, engagement, skip rate) on
events read from SQLite; ``app.domain.analytics.metrics`` adds retention curves, completion, Gini and traffic
sources. Everything shown to operators is an aggregate: no other user's id appears on these pages.
Anonymised events (a deleted account's, ``user_id`` NULL) count in per-video totals but not in per-user figures.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, or_, select

from app.db.engine import Database
from app.db.models import PUBLISHED_MODERATION, MediaJob, User, Video
from app.db.models import Event as EventRow
from app.domain.analytics import metrics as am
from recommender import Event
from recommender import metrics as rm

DAY = rm.DAY
PUBLISHED = PUBLISHED_MODERATION
NEW_CREATOR_DAYS = 14


@dataclass(frozen=True)
class Row:
    """One stored event, as the analytics need it."""

    event_type: str
    user_id: str | None
    video_id: str | None
    creator_id: str | None
    ts: float
    watch_duration: float | None
    info: dict

    def as_event(self) -> Event | None:
        if not self.user_id:
            return None
        return Event(event_id="", user_id=self.user_id, event_type=self.event_type, timestamp=self.ts,
                     item_id=self.video_id, creator_id=self.creator_id, watch_duration=self.watch_duration,
                     info=self.info)


def _ts(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


async def load_rows(db: Database, since: float, until: float | None = None, *, creator_id: str | None = None,
                    video_ids: list[str] | None = None, types: tuple[str, ...] | None = None) -> list[Row]:
    query = select(EventRow.event_type, EventRow.user_id, EventRow.video_id, EventRow.creator_id,
                   EventRow.timestamp, EventRow.watch_duration, EventRow.additional_info).where(
        EventRow.timestamp >= datetime.fromtimestamp(since, UTC))
    if until is not None:
        query = query.where(EventRow.timestamp < datetime.fromtimestamp(until, UTC))
    if creator_id is not None:
        clauses = [EventRow.creator_id == creator_id]
        if video_ids:
            clauses.append(EventRow.video_id.in_(video_ids))
        query = query.where(or_(*clauses))
    if types:
        query = query.where(EventRow.event_type.in_(types))
    async with db.read() as session:
        result = (await session.execute(query.order_by(EventRow.timestamp))).all()
    return [Row(t, u, v, c, _ts(ts), w, dict(info or {})) for t, u, v, c, ts, w, info in result]


def metric_events(rows: list[Row]) -> list[Event]:
    return [e for e in (r.as_event() for r in rows) if e is not None]


def day_start(at: float) -> float:
    return float(int(at // DAY) * DAY)


def day_label(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%b %d")


# ---- the operator dashboard -------------------------------------------------------------------------------
@dataclass
class Overview:
    now: float
    snapshot: dict
    videos_per_session: float
    days: list[str]
    dau: list[float]
    ctr: list[float | None]
    skip: list[float | None]
    engagement: list[float | None]
    coverage: float
    catalogue: int
    served_videos: int
    topic_diversity: float
    creators_per_page: float
    trending_videos: list[dict]
    trending_hashtags: list[tuple[str, int]]
    exposure_gini: float
    lorenz: list[tuple[float, float]]
    exposure_creators: int
    new_creators: dict
    media_error_rate: float
    sources: dict[str, int] = field(default_factory=dict)
    impressions_today: int = 0
    impressions_week: int = 0


async def platform_overview(db: Database, now: float, days: int = 14) -> Overview:
    """Every dashboard figure for the day ending at ``now`` (rolling 24 h, like ``recommender.metrics.snapshot``)."""
    first_day = day_start(now) - (days - 1) * DAY
    since = min(first_day, now - 9 * DAY)  # D7 retention needs the day 8 days back
    rows = await load_rows(db, since, now + 1)
    events = metric_events(rows)
    snapshot = rm.snapshot(events, now)
    today = rm.in_window(events, now - DAY, now)

    labels, dau, ctr, skip, engagement = [], [], [], [], []
    for i in range(days):
        start = first_day + i * DAY
        window = rm.in_window(events, start, start + DAY)
        labels.append(day_label(start))
        dau.append(float(len({e.user_id for e in window})))
        has_exposure = any(e.event_type == "impression" for e in window)
        ctr.append(rm.click_through_rate(window) if has_exposure else None)
        skip.append(rm.skip_rate(window) if window else None)
        engagement.append(rm.engagement_rate(window) if any(e.event_type == "view" for e in window) else None)

    week = [r for r in rows if r.ts >= now - 7 * DAY]
    impressions = [r for r in week if r.event_type == "impression" and r.video_id]
    async with db.read() as session:
        published = (await session.execute(
            select(Video.id, Video.creator_id, Video.topic, Video.hashtags, Video.caption, Video.created_at)
            .where(Video.state == "ready", Video.moderation.in_(PUBLISHED)))).all()
        uploads_week = (await session.execute(
            select(Video.state, func.count()).where(Video.created_at >= datetime.fromtimestamp(now - 7 * DAY, UTC))
            .group_by(Video.state))).all()
    catalogue = {vid: (creator, topic, tags, caption, _ts(created))
                 for vid, creator, topic, tags, caption, created in published}
    served = {r.video_id for r in impressions}
    coverage = len(served & set(catalogue)) / len(catalogue) if catalogue else 0.0
    topics = Counter((catalogue.get(r.video_id) or (None, None, [], "", 0))[1] or "other" for r in impressions)
    pages: dict[str, set[str]] = defaultdict(set)
    for r in impressions:
        if r.info.get("request_id"):
            pages[str(r.info["request_id"])].add(r.creator_id or "")
    per_page = [len(creators) for creators in pages.values()]

    # Trending: views in the last 24 hours against the 24 hours before.
    views_now = Counter(r.video_id for r in rows if r.event_type == "view" and r.ts >= now - DAY and r.video_id)
    views_before = Counter(r.video_id for r in rows
                           if r.event_type == "view" and now - 2 * DAY <= r.ts < now - DAY and r.video_id)
    trending = []
    for vid, count in views_now.most_common(40):
        if vid not in catalogue:
            continue
        before = views_before.get(vid, 0)
        trending.append({"video_id": vid, "caption": catalogue[vid][3], "views": count, "before": before,
                         "growth": (count - before) / before if before else None})
        if len(trending) >= 8:
            break
    tags = Counter()
    for vid, count in views_now.items():
        for tag in (catalogue.get(vid) or (None, None, [], "", 0))[2] or []:
            tags[str(tag).lower()] += count

    # Fairness: impressions per creator with published videos (zeros included), and new vs established.
    creators = {creator for creator, *_ in catalogue.values()}
    per_creator = Counter(r.creator_id for r in impressions if r.creator_id in creators)
    exposure = [per_creator.get(c, 0) for c in creators]
    first_upload: dict[str, float] = {}
    for creator, _, _, _, created in catalogue.values():
        first_upload[creator] = min(first_upload.get(creator, created), created)
    new = {c for c, at in first_upload.items() if at >= now - NEW_CREATOR_DAYS * DAY}
    total_imp = sum(exposure)
    new_creators = {
        "count": len(new), "established": len(creators) - len(new),
        "share_of_creators": len(new) / len(creators) if creators else 0.0,
        "share_of_impressions": sum(per_creator.get(c, 0) for c in new) / total_imp if total_imp else 0.0,
        "impressions_per_creator_new": (sum(per_creator.get(c, 0) for c in new) / len(new)) if new else 0.0,
        "impressions_per_creator_established": (
            sum(per_creator.get(c, 0) for c in creators - new) / len(creators - new) if creators - new else 0.0),
    }
    uploads = dict(uploads_week)
    finished = sum(uploads.values()) - uploads.get("processing", 0) - uploads.get("uploaded", 0)
    return Overview(
        now=now, snapshot=snapshot, videos_per_session=am.videos_per_session(today), days=labels, dau=dau,
        ctr=ctr, skip=skip, engagement=engagement, coverage=coverage, catalogue=len(catalogue),
        served_videos=len(served & set(catalogue)), topic_diversity=am.normalised_entropy(topics.values()),
        creators_per_page=sum(per_page) / len(per_page) if per_page else 0.0, trending_videos=trending,
        trending_hashtags=tags.most_common(10), exposure_gini=am.gini(exposure), lorenz=am.lorenz_curve(exposure),
        exposure_creators=len(creators), new_creators=new_creators,
        media_error_rate=uploads.get("failed", 0) / finished if finished > 0 else 0.0,
        sources=am.traffic_by_source(r.info for r in rows if r.event_type == "view" and r.ts >= now - DAY),
        impressions_today=sum(1 for e in today if e.event_type == "impression"), impressions_week=len(impressions),
    )


async def media_queue(db: Database) -> dict:
    """Counts of media jobs per step and state, and the failed ones (most recent first)."""
    async with db.read() as session:
        counts = (await session.execute(
            select(MediaJob.step, MediaJob.status, func.count()).group_by(MediaJob.step, MediaJob.status))).all()
        failed = (await session.execute(
            select(MediaJob, Video.caption).join(Video, Video.id == MediaJob.video_id)
            .where(MediaJob.status == "failed").order_by(MediaJob.finished_at.desc()).limit(20))).all()
    table: dict[str, dict[str, int]] = defaultdict(dict)
    for step, status, count in counts:
        table[step][status] = count
    return {"table": dict(table), "failed": [{"job": job, "caption": caption} for job, caption in failed],
            "totals": _totals(counts)}


def _totals(counts: list[tuple[str, str, int]]) -> dict[str, int]:
    totals: Counter = Counter()
    for _, status, count in counts:
        totals[status] += count
    return dict(totals)


# ---- creator analytics -------------------------------------------------------------------------------------
@dataclass
class VideoStats:
    video: Video
    impressions: int = 0
    views: int = 0
    unique_viewers: int = 0
    watch_seconds: float = 0.0
    mean_watch: float = 0.0
    mean_ratio: float = 0.0
    completion: float = 0.0
    likes: int = 0
    comments: int = 0
    shares: int = 0
    saves: int = 0
    follows: int = 0


@dataclass
class CreatorReport:
    creator: User
    days: int
    videos: list[VideoStats]
    totals: VideoStats
    labels: list[str]
    daily_views: list[float]
    daily_watch_minutes: list[float]
    daily_engagements: list[float]
    traffic: dict[str, int]
    impression_traffic: dict[str, int]
    retention: list[float]  # by second for one video, by 5% of each video for a creator's overview
    retention_unit: str  # "s" or "%"
    follows_gained: int
    video: Video | None = None


def _video_stats(video: Video, rows: list[Row]) -> VideoStats:
    views = [r for r in rows if r.event_type == "view"]
    durations = [r.watch_duration for r in views]
    stats = VideoStats(video=video, impressions=sum(1 for r in rows if r.event_type == "impression"),
                       views=len(views), unique_viewers=len({r.user_id for r in views if r.user_id}))
    stats.watch_seconds = sum(w or 0.0 for w in durations)
    stats.mean_watch = stats.watch_seconds / len(views) if views else 0.0
    stats.mean_ratio = (sum(am.watch_ratio(w, video.duration) for w in durations) / len(views)) if views else 0.0
    stats.completion = am.completion_rate(durations, video.duration)
    kinds = Counter(r.event_type for r in rows)
    stats.likes, stats.comments, stats.shares = kinds["like"], kinds["comment"], kinds["share"]
    stats.saves, stats.follows = kinds["save"], kinds["follow"]
    return stats


async def creator_report(db: Database, creator: User, now: float, days: int = 28,
                         video_id: str | None = None) -> CreatorReport:
    async with db.read() as session:
        query = select(Video).where(Video.creator_id == creator.id, Video.state == "ready")
        if video_id:
            query = query.where(Video.id == video_id)
        videos = list((await session.execute(query.order_by(Video.created_at.desc()))).scalars())
    ids = [v.id for v in videos]
    first_day = day_start(now) - (days - 1) * DAY
    rows = await load_rows(db, first_day, now + 1, creator_id=creator.id, video_ids=ids)
    if video_id:
        rows = [r for r in rows if r.video_id == video_id]
    by_video: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if r.video_id:
            by_video[r.video_id].append(r)
    stats = [_video_stats(v, by_video.get(v.id, [])) for v in videos]
    totals = VideoStats(video=videos[0] if video_id and videos else Video(creator_id=creator.id, duration=0.0))
    views = [r for r in rows if r.event_type == "view" and r.video_id in by_video]
    duration_of = {v.id: v.duration for v in videos}
    if stats:
        for name in ("impressions", "views", "likes", "comments", "shares", "saves"):
            setattr(totals, name, sum(getattr(s, name) for s in stats))
        totals.unique_viewers = len({r.user_id for r in views if r.user_id})
        totals.watch_seconds = sum(s.watch_seconds for s in stats)
        totals.mean_watch = totals.watch_seconds / totals.views if totals.views else 0.0
        totals.mean_ratio = (sum(am.watch_ratio(r.watch_duration, duration_of[r.video_id]) for r in views)
                             / len(views)) if views else 0.0
        totals.completion = (sum(1 for r in views if am.watch_ratio(r.watch_duration, duration_of[r.video_id])
                                 >= am.COMPLETE_RATIO) / len(views)) if views else 0.0
    follows = sum(1 for r in rows if r.event_type == "follow") - sum(1 for r in rows if r.event_type == "unfollow")
    totals.follows = sum(1 for r in rows if r.event_type == "follow")

    labels, daily_views, daily_minutes, daily_eng = [], [], [], []
    for i in range(days):
        start = first_day + i * DAY
        window = [r for r in rows if start <= r.ts < start + DAY]
        labels.append(day_label(start))
        daily_views.append(float(sum(1 for r in window if r.event_type == "view")))
        daily_minutes.append(round(sum(r.watch_duration or 0 for r in window if r.event_type == "view") / 60, 2))
        daily_eng.append(float(sum(1 for r in window if r.event_type in am.ENGAGEMENT_TYPES)))
    if video_id and videos:
        retention = am.retention_curve([r.watch_duration for r in views], videos[0].duration)
        unit = "s"
    else:
        retention = am.relative_retention_curve([(r.watch_duration, duration_of[r.video_id]) for r in views])
        unit = "%"
    return CreatorReport(
        creator=creator, days=days, videos=stats, totals=totals, labels=labels, daily_views=daily_views,
        daily_watch_minutes=daily_minutes, daily_engagements=daily_eng,
        traffic=am.traffic_by_source(r.info for r in views),
        impression_traffic=am.traffic_by_source(r.info for r in rows if r.event_type == "impression"),
        retention=retention, retention_unit=unit, follows_gained=follows, video=videos[0] if video_id and videos
        else None,
    )
