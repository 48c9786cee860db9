"""Building feed pages: what to show next, for whom, and logging each impression.

``FeedService.next_page`` is the one door the feed pages go through. It asks the recommender (For You) or the
follow graph (Following) for the next videos, never repeats a video already served in this browser session,
hydrates each into a ``Card`` with counts and the viewer's own state, and logs an impression per card with its
position and candidate source.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from sqlalchemy import func, select

from app.db.engine import Database
from app.db.models import (
    Comment,
    Event,
    Follow,
    HiddenCreator,
    HiddenVideo,
    Like,
    Report,
    Save,
    User,
    Video,
    published_clause,
)
from app.domain.events.writer import EventIn, EventWriter
from app.domain.experiments.service import registry_for
from app.domain.sounds.services import SoundView, sounds_of_videos
from recommender.reasons import fill as fill_reason

TABS = ("foryou", "following")
MAX_TRACKED_SESSIONS = 5000


@dataclass
class Card:
    video: Video
    creator: User
    source: str
    reasons: list[str]
    position: int
    request_id: str
    like_count: int = 0
    comment_count: int = 0
    save_count: int = 0
    share_count: int = 0
    liked: bool = False
    saved: bool = False
    following: bool = False
    variant: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    propensity: float | None = None  # P(shown here) for randomised slots (random exposure, exploration)
    sound: SoundView | None = None  # the audio track it uses (app.domain.sounds), linked from the card

    @property
    def video_url(self) -> str:
        return f"/media/{self.video.id}/video.mp4"

    @property
    def poster_url(self) -> str:
        return f"/media/{self.video.id}/poster.jpg"

    @property
    def captions_url(self) -> str | None:
        return f"/media/{self.video.id}/captions.vtt" if self.video.transcript else None


@dataclass
class Pick:
    """One chosen video with why it was chosen (from the recommender or a simpler source)."""

    video_id: str
    source: str
    reasons: list[str]
    score: float = 0.0
    probabilities: dict[str, float] = field(default_factory=dict)
    propensity: float | None = None


class ServedRegistry:
    """Videos already served per browser session and tab, so a session never sees one twice."""

    def __init__(self) -> None:
        self._served: OrderedDict[str, set[str]] = OrderedDict()

    def key(self, session_key: str, tab: str) -> str:
        return f"{session_key}:{tab}"

    def get(self, session_key: str, tab: str) -> set[str]:
        key = self.key(session_key, tab)
        served = self._served.setdefault(key, set())
        self._served.move_to_end(key)
        while len(self._served) > MAX_TRACKED_SESSIONS:
            self._served.popitem(last=False)
        return served

    def reset(self, session_key: str, tab: str) -> None:
        self._served.pop(self.key(session_key, tab), None)


async def hidden_for(db: Database, user_id: str | None) -> tuple[set[str], set[str]]:
    """(hidden or reported video ids, hidden or blocked creator ids) of a user."""
    if not user_id:
        return set(), set()
    async with db.read() as session:
        videos = set((await session.execute(select(HiddenVideo.video_id).where(HiddenVideo.user_id == user_id)))
                     .scalars())
        videos |= set((await session.execute(select(Report.video_id).where(Report.user_id == user_id))).scalars())
        creators = set((await session.execute(
            select(HiddenCreator.creator_id).where(HiddenCreator.user_id == user_id))).scalars())
    return videos, creators


class FeedService:
    def __init__(self, db: Database, events: EventWriter, page_size: int, recommend=None) -> None:  # noqa: ANN001
        self.db = db
        self.events = events
        self.page_size = page_size
        self.served = ServedRegistry()
        # ``recommend(user_id, k, exclude, session_key) -> list[Pick]``; set once the recommender is wired.
        self.recommend = recommend

    async def next_page(self, viewer: User | None, session_key: str, tab: str = "foryou",
                        k: int | None = None) -> list[Card]:
        k = k or self.page_size
        tab = tab if tab in TABS else "foryou"
        served = self.served.get(session_key, tab)
        if tab == "following":
            picks = await self._following(viewer, served, k)
        elif self.recommend is not None and viewer is not None:
            picks = await self.recommend(viewer.id, k, frozenset(served), session_key)
        else:
            picks = await self._newest(viewer, served, k)
        picks = [pick for pick in picks if pick.video_id not in served][:k]
        served.update(pick.video_id for pick in picks)
        cards = await self.hydrate(viewer, picks, start_position=len(served) - len(picks))
        if viewer is not None and cards:
            await self._log_impressions(viewer.id, cards, tab)
        return cards

    async def shared_card(self, viewer: User, session_key: str, video_id: str, source: str = "share",
                          reason: str = "Someone shared this link with you") -> Card | None:
        """A video opened by its own link: see ``opened_cards``."""
        cards = await self.opened_cards(viewer, session_key, [video_id], source, reason)
        return cards[0] if cards else None

    async def opened_cards(self, viewer: User, session_key: str, video_ids: list[str], source: str,
                           reason: str) -> list[Card]:
        """Videos opened from a page (a shared link, a profile, hashtag, search or saved grid), in that order:
        hydrated, marked served (the For You feed after them won't repeat them) and logged as impressions whose
        source and feed are where they were opened, so creators see where their traffic came from."""
        cards = await self.hydrate(viewer, [Pick(video_id, source, [reason]) for video_id in video_ids])
        if not cards:
            return []
        self.served.get(session_key, "foryou").update(card.video.id for card in cards)
        await self._log_impressions(viewer.id, cards, source)
        return cards

    async def _newest(self, viewer: User | None, served: set[str], k: int) -> list[Pick]:
        """Without a recommender: newest ready videos (used before the recommender is wired, and in tests)."""
        hidden_videos, hidden_creators = await hidden_for(self.db, viewer.id if viewer else None)
        async with self.db.read() as session:
            rows = (await session.execute(
                select(Video.id, Video.creator_id).where(*published_clause())
                .order_by(Video.created_at.desc()).limit(k + len(served) + len(hidden_videos) + 50)
            )).all()
        picks = [Pick(vid, "fresh", ["New on ForYou"]) for vid, creator in rows
                 if vid not in served and vid not in hidden_videos and creator not in hidden_creators]
        return picks[:k]

    async def _following(self, viewer: User | None, served: set[str], k: int) -> list[Pick]:
        """Followed creators' videos: the ones this viewer has not watched yet, newest first, then the rest,
        newest first (so the tab never runs dry while there is anything to show)."""
        if viewer is None:
            return []
        ordered = await self.following_videos(viewer)
        return [pick for pick in ordered if pick.video_id not in served][:k]

    async def following_videos(self, viewer: User, limit: int = 500) -> list[Pick]:
        hidden_videos, hidden_creators = await hidden_for(self.db, viewer.id)
        async with self.db.read() as session:
            rows = (await session.execute(
                select(Video.id, User.username).join(Follow, Follow.creator_id == Video.creator_id)
                .join(User, User.id == Video.creator_id)
                .where(Video.creator_id.not_in(hidden_creators))
                .where(Follow.follower_id == viewer.id, *published_clause())
                .order_by(Video.created_at.desc()).limit(limit)
            )).all()
            ids = [vid for vid, _ in rows]
            watched = set((await session.execute(select(Event.video_id).where(
                Event.user_id == viewer.id, Event.event_type.in_(("view", "complete_view", "skip")),
                Event.video_id.in_(ids)))).scalars()) if ids else set()
        unseen = [Pick(vid, "following", [f"New from @{name}, who you follow"])
                  for vid, name in rows if vid not in watched and vid not in hidden_videos]
        seen = [Pick(vid, "following", [f"From @{name}, who you follow (you've seen it)"])
                for vid, name in rows if vid in watched and vid not in hidden_videos]
        return unseen + seen

    async def hydrate(self, viewer: User | None, picks: list[Pick], start_position: int = 0) -> list[Card]:
        """Turn picks into cards: video, creator, counts, and the viewer's like/save/follow state."""
        if not picks:
            return []
        ids = [pick.video_id for pick in picks]
        async with self.db.read() as session:
            videos = {v.id: v for v in (await session.execute(select(Video).where(Video.id.in_(ids)))).scalars()}
            creator_ids = {v.creator_id for v in videos.values()}
            creators = {u.id: u for u in (await session.execute(select(User).where(User.id.in_(creator_ids))))
                        .scalars()}
            likes = await _counts(session, Like, ids)
            comments = await _counts(session, Comment, ids)
            saves = await _counts(session, Save, ids)
            shares = dict((await session.execute(
                select(Event.video_id, func.count()).where(Event.event_type == "share", Event.video_id.in_(ids))
                .group_by(Event.video_id))).all())
            liked = saved = following = set()
            if viewer is not None:
                liked = set((await session.execute(select(Like.video_id).where(
                    Like.user_id == viewer.id, Like.video_id.in_(ids)))).scalars())
                saved = set((await session.execute(select(Save.video_id).where(
                    Save.user_id == viewer.id, Save.video_id.in_(ids)))).scalars())
                following = set((await session.execute(select(Follow.creator_id).where(
                    Follow.follower_id == viewer.id, Follow.creator_id.in_(creator_ids)))).scalars())
            sounds = await sounds_of_videos(session, ids)
        request_id = secrets.token_hex(6)
        cards = []
        for offset, pick in enumerate(pick for pick in picks if pick.video_id in videos):
            video = videos[pick.video_id]
            cards.append(Card(
                video=video, creator=creators[video.creator_id], source=pick.source,
                reasons=[fill_reason(r, creators[video.creator_id].username) for r in pick.reasons],
                position=start_position + offset, request_id=request_id,
                like_count=likes.get(video.id, 0), comment_count=comments.get(video.id, 0),
                save_count=saves.get(video.id, 0), share_count=shares.get(video.id, 0),
                liked=video.id in liked, saved=video.id in saved,
                following=video.creator_id in following, probabilities=pick.probabilities,
                propensity=pick.propensity, sound=sounds.get(video.id),
            ))
        return cards

    async def _log_impressions(self, user_id: str, cards: list[Card], tab: str) -> None:
        now = time.time()
        # The user's A/B variant (deterministic, see app.domain.experiments) goes on every impression.

        assignment = await registry_for(self.db).assignment(user_id)
        variant = {"experiment": assignment.experiment, "variant": assignment.variant} if assignment.variant else {}
        for card in cards:
            card.variant = assignment.variant
        await self.events.submit([
            EventIn(
                event_id=f"imp-{card.request_id}-{card.position}",
                event_type="impression",
                user_id=user_id,
                video_id=card.video.id,
                creator_id=card.video.creator_id,
                additional_info={"position": card.position, "source": card.source, "feed": tab,
                                 "request_id": card.request_id, "server_ts": now, **variant,
                                 **({"propensity": card.propensity} if card.propensity is not None else {})},
            )
            for card in cards
        ])


async def _counts(session, table, ids: list[str]) -> dict[str, int]:  # noqa: ANN001
    rows = await session.execute(
        select(table.video_id, func.count()).where(table.video_id.in_(ids)).group_by(table.video_id)
    )
    return dict(rows.all())
