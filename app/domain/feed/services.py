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
from functools import cached_property
from types import SimpleNamespace

from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup
from sqlalchemy import String, bindparam, exists, func, literal, select, union_all

from app.db.engine import Database, Prepared
from app.db.models import (
    PUBLISHED_MODERATION,
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
from app.db.sound_models import Sound, VideoSound
from app.domain.events.writer import EventIn, EventWriter
from app.domain.experiments.service import registry_for
from app.domain.sounds.services import SoundView
from recommender.reasons import fill as fill_reason

TABS = ("foryou", "following")
MAX_TRACKED_SESSIONS = 5000
MAX_HELD_IMPRESSIONS = 200  # per pending visitor: the latest ones are kept


@dataclass
class Card:
    video: CardVideo
    creator: CardCreator
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

    @cached_property
    def fragment_key(self) -> tuple:
        """What the cached parts of the card's markup depend on (templates/components/card.html): the video, its
        creator and its sound. Anything that changes them (an edit, a new avatar or name, a sound's use count)
        changes the key, so a stale fragment is never shown; counts and the viewer's own state are not in it."""
        video, creator, sound = self.video, self.creator, self.sound
        return (video.id, video.creator_id, video.caption, video.duration, video.language, video.has_transcript,
                creator.username, creator.display_name, creator.avatar_path,
                (sound.id, sound.title, sound.usage_count) if sound else None)

    def context_json(self, feed: str) -> Markup:
        """The card's context as JSON for its ``hx-vals`` (every action inside it sends it: see
        app.domain.interactions), safe inside a single-quoted attribute."""
        return Markup(htmlsafe_json_dumps({"position": self.position, "source": self.source, "feed": feed,
                                           "request_id": self.request_id}))

    @property
    def video_url(self) -> str:
        return f"/media/{self.video.id}/video.mp4"

    @property
    def poster_url(self) -> str:
        return f"/media/{self.video.id}/poster.jpg"

    @property
    def captions_url(self) -> str | None:
        return f"/media/{self.video.id}/captions.vtt" if self.video.has_transcript else None


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


def _hidden_query():  # noqa: ANN202 - a Core SELECT
    user = bindparam("user_id", type_=String())
    return union_all(
        select(literal("v"), HiddenVideo.video_id).where(HiddenVideo.user_id == user),
        select(literal("v"), Report.video_id).where(Report.user_id == user),
        select(literal("c"), HiddenCreator.creator_id).where(HiddenCreator.user_id == user),
    )


_HIDDEN_QUERY = _hidden_query()


def hidden_in(connection, user_id: str) -> tuple[set[str], set[str]]:  # noqa: ANN001 - a (sync) Connection
    """``hidden_for`` on an open connection, for ``Database.read_core`` (one query)."""
    rows = connection.execute(_HIDDEN_QUERY, {"user_id": user_id}).all()
    return {key for kind, key in rows if kind == "v"}, {key for kind, key in rows if kind == "c"}


async def hidden_for(db: Database, user_id: str | None) -> tuple[set[str], set[str]]:
    """(hidden or reported video ids, hidden or blocked creator ids) of a user, in one query."""
    if not user_id:
        return set(), set()
    return await db.read_core(lambda connection: hidden_in(connection, user_id))


class FeedService:
    def __init__(self, db: Database, events: EventWriter, page_size: int, recommend=None) -> None:  # noqa: ANN001
        self.db = db
        self.events = events
        self.page_size = page_size
        self.served = ServedRegistry()
        self.unsaved: OrderedDict[str, list[EventIn]] = OrderedDict()  # pending visitors' impressions
        # ``recommend(user_id, k, exclude, session_key) -> list[Pick]``; set once the recommender is wired.
        self.recommend = recommend

    async def next_page(self, viewer: User | None, session_key: str, tab: str = "foryou",
                        k: int | None = None, visitor_id: str | None = None) -> list[Card]:
        """The next cards for ``viewer``, or for a pending visitor (no row yet: ``visitor_id``, its future guest
        id), whose impressions are held in memory until its guest is created (``adopt``), never written."""
        k = k or self.page_size
        tab = tab if tab in TABS else "foryou"
        served = self.served.get(session_key, tab)
        viewer_id = viewer.id if viewer is not None else visitor_id
        if tab == "following":
            picks = await self._following(viewer, served, k)
        elif self.recommend is not None and viewer_id is not None:
            picks = await (self.recommend(viewer_id, k, frozenset(served), session_key) if viewer is not None
                           else self.recommend(viewer_id, k, frozenset(served), session_key, stored=False))
        else:
            picks = await self._newest(viewer, served, k)
        picks = [pick for pick in picks if pick.video_id not in served][:k]
        served.update(pick.video_id for pick in picks)
        cards = await self.hydrate(viewer, picks, start_position=len(served) - len(picks))
        if viewer_id is not None and cards:
            await self._log_impressions(viewer_id, cards, tab, session_key if viewer is None else None)
        return cards

    async def shared_card(self, viewer: User | None, session_key: str, video_id: str, source: str = "share",
                          reason: str = "Someone shared this link with you",
                          visitor_id: str | None = None) -> Card | None:
        """A video opened by its own link: see ``opened_cards``."""
        cards = await self.opened_cards(viewer, session_key, [video_id], source, reason, visitor_id)
        return cards[0] if cards else None

    async def opened_cards(self, viewer: User | None, session_key: str, video_ids: list[str], source: str,
                           reason: str, visitor_id: str | None = None) -> list[Card]:
        """Videos opened from a page (a shared link, a profile, hashtag, search or saved grid), in that order:
        hydrated, marked served (the For You feed after them won't repeat them) and logged as impressions whose
        source and feed are where they were opened, so creators see where their traffic came from."""
        cards = await self.hydrate(viewer, [Pick(video_id, source, [reason]) for video_id in video_ids])
        if not cards:
            return []
        self.served.get(session_key, "foryou").update(card.video.id for card in cards)
        viewer_id = viewer.id if viewer is not None else visitor_id
        if viewer_id is not None:
            await self._log_impressions(viewer_id, cards, source, session_key if viewer is None else None)
        return cards

    async def adopt(self, session_key: str, guest: User) -> None:
        """A pending visitor's guest now exists: write the impressions held for it (AccountService hook)."""
        held = self.unsaved.pop(session_key, None)
        if held:
            for item in held:
                item.user_id = guest.id
            await self.events.submit(held)

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
        """Turn picks into cards: video, creator, counts, sound and the viewer's like/save/follow state, all
        from one Core query (see ``_CARD_QUERY``): plain rows, no ORM objects."""
        if not picks:
            return []
        ids = list(dict.fromkeys(pick.video_id for pick in picks))
        rows = {}
        for start in range(0, len(ids), CARD_QUERY_SLOTS):
            chunk = ids[start:start + CARD_QUERY_SLOTS]
            chunk += chunk[-1:] * (CARD_QUERY_SLOTS - len(chunk))  # the unused slots repeat an id
            params = {f"id_{slot}": video_id for slot, video_id in enumerate(chunk)}
            params["viewer"] = viewer.id if viewer is not None else ""
            rows.update((row.v__id, row) for row in await self.db.fetch(_CARD_QUERY, params))
        request_id = secrets.token_hex(6)
        cards = []
        for offset, pick in enumerate(pick for pick in picks if pick.video_id in rows):
            row = rows[pick.video_id]
            video = CardVideo(**{key: row[index] for key, index in _VIDEO_FIELDS})
            creator = CardCreator(**{key: row[index] for key, index in _CREATOR_FIELDS})
            cards.append(Card(
                video=video, creator=creator, source=pick.source,
                reasons=[fill_reason(r, creator.username) for r in pick.reasons],
                position=start_position + offset, request_id=request_id,
                like_count=row.like_count, comment_count=row.comment_count, save_count=row.save_count,
                share_count=row.share_count, liked=bool(row.liked), saved=bool(row.saved),
                following=bool(row.following), probabilities=pick.probabilities, propensity=pick.propensity,
                sound=SoundView(row.sound_id, row.sound_title, row.sound_usage) if row.sound_id else None,
            ))
        return cards

    async def _log_impressions(self, user_id: str, cards: list[Card], tab: str,
                               hold_for: str | None = None) -> None:
        """Impressions through the batched event writer; for a pending visitor (``hold_for``: its session key)
        held in memory instead, bounded, until its guest exists."""
        now = time.time()
        # The user's A/B variant (deterministic, see app.domain.experiments) goes on every impression.

        assignment = await registry_for(self.db).assignment(user_id)
        variant = {"experiment": assignment.experiment, "variant": assignment.variant} if assignment.variant else {}
        for card in cards:
            card.variant = assignment.variant
        events = [
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
        ]
        if hold_for is None:
            await self.events.submit(events)
            return
        held = self.unsaved.setdefault(hold_for, [])
        self.unsaved.move_to_end(hold_for)
        held.extend(events)
        del held[:-MAX_HELD_IMPRESSIONS]
        while len(self.unsaved) > MAX_TRACKED_SESSIONS:
            self.unsaved.popitem(last=False)


class CardVideo(SimpleNamespace):
    """A card's video: the videos columns a card shows (``CARD_VIDEO_COLUMNS``, ``has_transcript``) as attributes
    (a plain row, not an ORM object)."""


class CardCreator(SimpleNamespace):
    """A card's creator: the users columns a card shows (``CARD_CREATOR_COLUMNS``) as attributes."""


# Only what the card's markup and its events read: fewer columns to decode per card (no JSON columns).
CARD_VIDEO_COLUMNS = ("id", "creator_id", "caption", "duration", "width", "height", "language", "topic")
CARD_CREATOR_COLUMNS = ("id", "username", "display_name", "avatar_path")


CARD_QUERY_SLOTS = 8  # videos per statement: a feed page (6) in one


def _card_query():  # noqa: ANN202 - a Core SELECT
    """Every card of a page in one statement: the video and creator rows, the like/comment/save/share counts,
    the sound and how many published videos use it, and the viewer's like/save/follow (``:viewer``; ``''`` for
    nobody), for the videos ``:id_0`` ... (``CARD_QUERY_SLOTS`` plain parameters, not an expanding ``IN``: its SQL
    is compiled once for ``Database.fetch``, where an expanding list is rewritten per execution)."""
    v, u = Video.__table__, User.__table__
    likes, saves, comments, events = Like.__table__, Save.__table__, Comment.__table__, Event.__table__
    follows, links, sounds = Follow.__table__, VideoSound.__table__, Sound.__table__
    uses, used = VideoSound.__table__.alias("uses"), Video.__table__.alias("used")

    def count(table, *where):  # noqa: ANN001, ANN202
        return select(func.count()).select_from(table).where(*where).scalar_subquery()

    viewer = bindparam("viewer", type_=String())
    columns = [
        *(v.c[name].label(f"v__{name}") for name in CARD_VIDEO_COLUMNS),
        (v.c.transcript != "").label("v__has_transcript"),  # for the captions track: not the text itself
        *(u.c[name].label(f"u__{name}") for name in CARD_CREATOR_COLUMNS),
        count(likes, likes.c.video_id == v.c.id).label("like_count"),
        count(comments, comments.c.video_id == v.c.id).label("comment_count"),
        count(saves, saves.c.video_id == v.c.id).label("save_count"),
        count(events, events.c.video_id == v.c.id, events.c.event_type == "share").label("share_count"),
        exists().where(likes.c.user_id == viewer, likes.c.video_id == v.c.id).label("liked"),
        exists().where(saves.c.user_id == viewer, saves.c.video_id == v.c.id).label("saved"),
        exists().where(follows.c.follower_id == viewer, follows.c.creator_id == v.c.creator_id).label("following"),
        links.c.sound_id.label("sound_id"), sounds.c.title.label("sound_title"),
        select(func.count()).select_from(uses.join(used, used.c.id == uses.c.video_id))
        .where(uses.c.sound_id == links.c.sound_id, used.c.state == "ready",
               used.c.moderation.in_(PUBLISHED_MODERATION)).scalar_subquery().label("sound_usage"),
    ]
    return (select(*columns)
            .select_from(v.join(u, u.c.id == v.c.creator_id).outerjoin(links, links.c.video_id == v.c.id)
                         .outerjoin(sounds, sounds.c.id == links.c.sound_id))
            .where(v.c.id.in_([bindparam(f"id_{slot}", type_=String()) for slot in range(CARD_QUERY_SLOTS)])))


_CARD_QUERY = Prepared(_card_query())
_KEYS = list(_CARD_QUERY.keys)
_VIDEO_FIELDS = [(key[3:], i) for i, key in enumerate(_KEYS) if key.startswith("v__")]
_CREATOR_FIELDS = [(key[3:], i) for i, key in enumerate(_KEYS) if key.startswith("u__")]
