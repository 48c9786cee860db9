"""Moderation: the reports queue, automated flags waiting for review, actions on videos and creators, the
blocked-terms list, and an audit log of every action (who, what, when, why).

Video states (``videos.moderation``): ok → flagged (automated, waits for review) → flagged_ok (approved) |
removed; ok → hidden (out of feeds, still on disk) → ok (restored); removed (out of everything but the
creator's studio). After every change the recommender re-reads the video, whose availability derives from it.
Banning a creator hides their published videos and drops their sessions (the session store also refuses a
banned user's session on its next request, and the login refuses them).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select, update

from app.db.admin_models import BlockedTerm, ModerationAction, ModerationFlag
from app.db.engine import Database
from app.db.models import PUBLISHED_MODERATION, AuthSession, Report, User, Video
from app.domain.feed.recommender import RecommenderService

log = logging.getLogger(__name__)

VIDEO_ACTIONS = ("dismiss", "approve", "hide", "remove", "restore")
USER_ACTIONS = ("warn", "ban", "unban")
LIVE = PUBLISHED_MODERATION


class ModerationError(ValueError):
    pass


def record_flags(session, video: Video, flags: list[dict]) -> None:  # noqa: ANN001 - an open write session
    """Inside the publish transaction: mark the video flagged and store why (and an audit entry)."""
    if video.moderation == "ok":
        video.moderation = "flagged"
    for flag in flags:
        session.add(ModerationFlag(video_id=video.id, source=flag["source"], details=flag["details"]))
    session.add(ModerationAction(actor="system", action="auto_flag", target_type="video", target_id=video.id,
                                 note=", ".join(f["source"] for f in flags), details={"flags": flags}))
    log.warning("upload flagged for review", extra={"video_id": video.id, "sources": [f["source"] for f in flags]})


@dataclass
class QueueItem:
    video: Video
    creator: User | None
    reasons: Counter = field(default_factory=Counter)
    reports: int = 0
    details: list[str] = field(default_factory=list)
    flags: list[ModerationFlag] = field(default_factory=list)
    last_at: object = None


def _audit(session, actor: User, action: str, target_type: str, target_id: str, note: str = "",  # noqa: ANN001
           **details: object) -> None:
    session.add(ModerationAction(actor=actor.username or actor.id, action=action, target_type=target_type,
                                 target_id=target_id, note=(note or "")[:500], details=dict(details)))
    log.info("moderation action", extra={"actor": actor.username, "action": action, "target": target_id})


class ModerationService:
    """The moderation queue and actions; after a change the recommender re-reads the video."""

    def __init__(self, db: Database, recommender: RecommenderService) -> None:
        self.db = db
        self.recommender = recommender

    async def queue(self) -> list[QueueItem]:
        """Videos with open reports or open automated flags, most reported first (no reporter ids are shown)."""
        async with self.db.read() as session:
            reports = (await session.execute(select(Report).where(Report.status == "open"))).scalars().all()
            flags = (await session.execute(
                select(ModerationFlag).where(ModerationFlag.status == "open"))).scalars().all()
            ids = {r.video_id for r in reports} | {f.video_id for f in flags}
            videos = {v.id: v for v in (await session.execute(select(Video).where(Video.id.in_(ids)))).scalars()}
            creators = {u.id: u for u in (await session.execute(
                select(User).where(User.id.in_({v.creator_id for v in videos.values()})))).scalars()}
        items: dict[str, QueueItem] = {}
        for vid, video in videos.items():
            items[vid] = QueueItem(video=video, creator=creators.get(video.creator_id))
        for report in reports:
            item = items.get(report.video_id)
            if item is None:
                continue
            item.reports += 1
            item.reasons[report.reason] += 1
            if report.details:
                item.details.append(report.details)
            item.last_at = max(item.last_at or report.created_at, report.created_at)
        for flag in flags:
            if flag.video_id in items:
                items[flag.video_id].flags.append(flag)
                items[flag.video_id].last_at = max(items[flag.video_id].last_at or flag.created_at, flag.created_at)
        return sorted(items.values(), key=lambda i: -(len(i.flags) + i.reports))


    async def audit_log(self, limit: int = 50) -> list[ModerationAction]:
        async with self.db.read() as session:
            return list((await session.execute(
                select(ModerationAction).order_by(ModerationAction.at.desc(), ModerationAction.id.desc()).limit(limit)
            )).scalars())


    async def counts(self) -> dict[str, int]:
        async with self.db.read() as session:
            open_reports = (await session.execute(
                select(func.count()).select_from(Report).where(Report.status == "open"))).scalar_one()
            flagged = (await session.execute(
                select(func.count()).select_from(Video).where(Video.moderation == "flagged"))).scalar_one()
        return {"open_reports": open_reports, "flagged": flagged}


    async def act_on_video(self, actor: User, video_id: str, action: str, note: str = "") -> Video:
        if action not in VIDEO_ACTIONS:
            raise ModerationError(f"Unknown action {action!r}.")
        async with self.db.write() as session:
            video = await session.get(Video, video_id)
            if video is None:
                raise ModerationError("That video is gone.")
            before = video.moderation
            open_reports = update(Report).where(Report.video_id == video_id, Report.status == "open")
            open_flags = update(ModerationFlag).where(ModerationFlag.video_id == video_id,
                                                      ModerationFlag.status == "open")
            if action == "dismiss":
                await session.execute(open_reports.values(status="dismissed"))
            elif action == "approve":
                if video.moderation in ("flagged", "hidden"):
                    video.moderation = "flagged_ok" if before == "flagged" else "ok"
                await session.execute(open_flags.values(status="approved"))
                await session.execute(open_reports.values(status="dismissed"))
            elif action == "hide":
                video.moderation = "hidden"
                await session.execute(open_reports.values(status="actioned"))
            elif action == "remove":
                video.moderation = "removed"
                await session.execute(open_flags.values(status="rejected"))
                await session.execute(open_reports.values(status="actioned"))
            elif action == "restore":
                flagged_before = (await session.execute(
                    select(ModerationFlag.id).where(ModerationFlag.video_id == video_id).limit(1))).first()
                video.moderation = "flagged_ok" if flagged_before else "ok"
                await session.execute(open_flags.values(status="approved"))
            _audit(session, actor, action, "video", video_id, note, before=before, after=video.moderation)
        await self.recommender.refresh_video(video_id)
        return video


    async def act_on_user(self, actor: User, user_id: str, action: str, note: str = "") -> User:
        if action not in USER_ACTIONS:
            raise ModerationError(f"Unknown action {action!r}.")
        hidden: list[str] = []
        async with self.db.write() as session:
            user = await session.get(User, user_id)
            if user is None:
                raise ModerationError("No such user.")
            if user.id == actor.id:
                raise ModerationError("You cannot moderate your own account.")
            before = user.status
            if action == "warn":
                user.status = "warned"
            elif action == "ban":
                user.status = "banned"
                await session.execute(delete(AuthSession).where(AuthSession.user_id == user.id))
                hidden = list((await session.execute(select(Video.id).where(
                    Video.creator_id == user.id, Video.moderation.in_(LIVE)))).scalars())
                if hidden:
                    await session.execute(update(Video).where(Video.id.in_(hidden)).values(moderation="hidden"))
            elif action == "unban":
                user.status = "active"
            _audit(session, actor, action, "user", user_id, note, before=before, after=user.status,
                   hidden_videos=hidden)
        for video_id in hidden:
            await self.recommender.refresh_video(video_id)
        return user


    async def add_terms(self, actor: User, raw: str) -> list[str]:
        terms = sorted({" ".join(t.lower().split())[:64] for t in (raw or "").replace("\n", ",").split(",")} - {""})
        if not terms:
            raise ModerationError("Enter one or more terms, separated by commas.")
        async with self.db.write() as session:
            existing = set((await session.execute(
                select(BlockedTerm.term).where(BlockedTerm.term.in_(terms)))).scalars())
            added = [t for t in terms if t not in existing]
            session.add_all(BlockedTerm(term=t) for t in added)
            if added:
                _audit(session, actor, "add_terms", "term", ",".join(added)[:64], terms=added)
        return added


    async def remove_term(self, actor: User, term: str) -> None:
        async with self.db.write() as session:
            await session.execute(delete(BlockedTerm).where(BlockedTerm.term == term))
            _audit(session, actor, "remove_term", "term", term[:64])


    async def flagged_summary(self) -> dict[str, int]:
        async with self.db.read() as session:
            rows = (await session.execute(select(ModerationFlag.source, ModerationFlag.status, func.count())
                                          .group_by(ModerationFlag.source, ModerationFlag.status))).all()
        summary: dict[str, int] = defaultdict(int)
        for source, status, count in rows:
            summary[f"{source}:{status}"] += count
        return dict(summary)
