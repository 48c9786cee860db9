"""Issue acceptance through the app: a fresh guest's For You feed shifts toward what they watch and like.

The guest swipes through the web app's own paths: beacons for views, completions and skips (POST /api/events),
and the feed service that the feed page calls. The catalogue is synthetic: two topics with clustered vectors,
indexed in LanceDB and loaded into the recommender the way the media pipeline's publish step does it.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select

from app.adapters.vector_store import VideoVectors
from app.db.models import Event, HiddenVideo, Report, User, Video
from app.domain.events.writer import EventIn
from tests.app.helpers import run, services
from tests.app.test_accounts import signup
from tests.conftest import csrf_of

pytestmark = pytest.mark.both_databases

TOPICS = ("cooking", "cars", "cats", "music")
DIM = 32


def build_catalogue(client, per_topic: int = 14) -> dict[str, str]:
    """Ready videos from 8 creators over four topics, vectors in LanceDB and the recommender. Returns id -> topic."""
    rng = np.random.default_rng(7)
    centres = {topic: rng.normal(size=DIM) for topic in TOPICS}
    svc = services(client)
    topic_of: dict[str, str] = {}

    async def _build() -> None:
        async with svc.db.write() as session:
            for c in range(8):
                session.add(User(id=f"u_creator{c}", username=f"creator{c}", display_name=f"Creator {c}",
                                 is_guest=False))
            await session.flush()
            created = datetime.now(UTC) - timedelta(days=2)
            for topic in TOPICS:
                for i in range(per_topic):
                    video = Video(creator_id=f"u_creator{(i + TOPICS.index(topic)) % 8}", state="ready",
                                  caption=f"{topic} video {i} #{topic}", hashtags=[topic], topic=topic,
                                  duration=10.0, created_at=created + timedelta(minutes=i))
                    session.add(video)
                    await session.flush()
                    topic_of[video.id] = topic
        for video_id, topic in topic_of.items():
            vector = centres[topic] + 0.3 * rng.normal(size=DIM)
            async with svc.db.read() as session:
                video = await session.get(Video, video_id)
            svc.vectors.upsert_video(VideoVectors(
                video_id=video_id, creator_id=video.creator_id, topic=topic, hashtags=[topic],
                caption=video.caption, duration=10.0, created_at=video.created_at.timestamp(),
                content_vector=vector / np.linalg.norm(vector), content_model="test:clustered"))
            await svc.recommender.refresh_video(video_id)

    run(client, _build())
    return topic_of


def beacon(client, csrf, events):
    response = client.post("/api/events", content=json.dumps({"csrf": csrf, "events": events}),
                           headers={"content-type": "text/plain"})
    assert response.status_code == 202, response.text


def test_a_guest_feed_shifts_toward_the_liked_topic_and_keeps_every_rule(client):
    topic_of = build_catalogue(client)
    svc = services(client)
    csrf = csrf_of(client)
    any_video = next(iter(topic_of))
    beacon(client, csrf, [{"event_id": uuid.uuid4().hex, "type": "impression", "video_id": any_video}])

    async def _guest() -> User:
        async with svc.db.read() as session:
            user_id = (await session.execute(select(Event.user_id).limit(1))).scalar_one()
            return await session.get(User, user_id)

    guest = run(client, _guest())
    assert guest.is_guest
    session_key = "browser-session-1"

    def page(k=10):
        return run(client, svc.feed.next_page(guest, session_key, "foryou", k=k))

    first = page()
    assert len(first) == 10
    first_share = sum(topic_of[c.video.id] == "cooking" for c in first) / len(first)

    # Watch every cooking video to the end and like it (as the like button records it); skip every car video fast.
    liked_events = []
    for card in first:
        video_id = card.video.id
        if topic_of[video_id] == "cooking":
            beacon(client, csrf, [
                {"event_id": uuid.uuid4().hex, "type": "view", "video_id": video_id, "watch_duration": 10.0,
                 "info": {"final": True, "position": card.position, "source": card.source}},
                {"event_id": uuid.uuid4().hex, "type": "complete_view", "video_id": video_id},
            ])
            liked_events.append(EventIn(event_id=uuid.uuid4().hex, event_type="like", user_id=guest.id,
                                        video_id=video_id, creator_id=card.video.creator_id))
        elif topic_of[video_id] == "cars":
            beacon(client, csrf, [
                {"event_id": uuid.uuid4().hex, "type": "view", "video_id": video_id, "watch_duration": 0.6,
                 "info": {"final": True}},
                {"event_id": uuid.uuid4().hex, "type": "skip", "video_id": video_id, "watch_duration": 0.6},
            ])
    run(client, svc.events.submit(liked_events))

    # "Not interested" in one unseen car video and a report on another, as their endpoints record them.
    unseen_cars = [v for v, t in topic_of.items() if t == "cars" and v not in {c.video.id for c in first}]
    hidden, reported = unseen_cars[:2]

    async def _hide_and_report() -> None:
        async with svc.db.write() as session:
            session.add(HiddenVideo(user_id=guest.id, video_id=hidden))
            session.add(Report(user_id=guest.id, video_id=reported, reason="spam"))
        await svc.events.submit([
            EventIn(event_id=uuid.uuid4().hex, event_type="hide", user_id=guest.id, video_id=hidden),
            EventIn(event_id=uuid.uuid4().hex, event_type="report", user_id=guest.id, video_id=reported,
                    additional_info={"reason": "spam"}),
        ])

    run(client, _hide_and_report())

    second = page()
    second_share = sum(topic_of[c.video.id] == "cooking" for c in second) / len(second)
    # The random-exposure slot ignores every preference by design (its cards are the unbiased log the models are
    # checked against), so a skipped topic's card there says nothing about what the ranking learned.
    cars_share = sum(topic_of[c.video.id] == "cars" and c.source != "random" for c in second) / len(second)
    # The over-personalisation guard caps one topic at two thirds of a page: the shift shows within that cap.
    assert second_share >= 0.4 and second_share > first_share, f"cooking {first_share:.0%} -> {second_share:.0%}"
    assert cars_share <= 0.1, f"skipped topic still at {cars_share:.0%}"

    later = page() + page()
    served = [c.video.id for c in first + second + later]
    assert hidden not in served and reported not in served
    assert len(served) == len(set(served)), "a video came back within the session"
    for cards in (first, second):
        creators = [c.video.creator_id for c in cards]
        assert all(a != b for a, b in zip(creators, creators[1:], strict=False)), creators
        assert all(c.reasons and all(r.strip() for r in c.reasons) for c in cards)
    sources = Counter(c.source for c in first + second)
    assert None not in sources and "" not in sources, f"every card names its candidate source: {sources}"

    async def _impressions() -> list[Event]:
        async with svc.db.read() as session:
            return (await session.execute(select(Event).where(Event.event_type == "impression",
                                                              Event.user_id == guest.id))).scalars().all()

    impressions = run(client, _impressions())
    logged = {(e.video_id, e.additional_info.get("position"), e.additional_info.get("source")) for e in impressions}
    assert all((c.video.id, c.position, c.source) in logged for c in first + second)


CARD = re.compile(r'<article class="card[^"]*" id="card-[^"]+"\s+data-video-id="([^"]+)" data-creator-id="([^"]+)"'
                  r' data-position="(\d+)"\s+data-source="([^"]*)"')


def test_the_same_shift_through_the_http_endpoints_alone(client):
    """The real path end to end: feed pages over GET /feed/cards, beacons, the like, hide and report endpoints."""
    topic_of = build_catalogue(client)
    signup(client, username="swiper")
    csrf = csrf_of(client)
    headers = {"hx-request": "true", "x-csrf-token": csrf}

    def page() -> list[tuple[str, str, int, str]]:
        response = client.get("/feed/cards?tab=foryou", headers={"hx-request": "true"})
        assert response.status_code == 200, response.text
        return [(v, c, int(p), s) for v, c, p, s in CARD.findall(response.text)]

    first = page() + page()  # two of the app's short pages: about as much to react to as one page of ten
    assert len(first) >= 10, f"two pages of cards, got {len(first)}"
    first_share = sum(topic_of[v] == "cooking" for v, *_ in first) / len(first)
    for video_id, _creator, position, source in first:
        if topic_of[video_id] == "cooking":
            beacon(client, csrf, [
                {"event_id": uuid.uuid4().hex, "type": "view", "video_id": video_id, "watch_duration": 10.0,
                 "info": {"final": True, "position": position, "source": source}},
                {"event_id": uuid.uuid4().hex, "type": "complete_view", "video_id": video_id},
            ])
            liked = client.post(f"/videos/{video_id}/like", headers=headers)
            assert liked.status_code == 200 and 'aria-pressed="true"' in liked.text
        elif topic_of[video_id] == "cars":
            beacon(client, csrf, [
                {"event_id": uuid.uuid4().hex, "type": "view", "video_id": video_id, "watch_duration": 0.6,
                 "info": {"final": True}},
                {"event_id": uuid.uuid4().hex, "type": "skip", "video_id": video_id, "watch_duration": 0.6},
            ])
    unseen_cars = [v for v, t in topic_of.items() if t == "cars" and v not in {c[0] for c in first}]
    hidden, reported = unseen_cars[:2]
    assert client.post(f"/videos/{hidden}/hide", headers=headers).status_code == 200
    report = client.post(f"/videos/{reported}/report", data={"reason": "spam"}, headers=headers)
    assert report.status_code == 200 and "foryou:hidden" in report.headers.get("hx-trigger", "")

    # The app's pages are short (6 cards): the next three of them (18 cards) are measured. A cold feed gives each
    # of the four topics a quarter; the topic cap allows the liked one at most 4 of 6 cards. The share is taken
    # over the first two: with 14 cooking videos, 2-4 of them seen already, two pages at the cap leave almost
    # none for the third (measured with the cap at 3 of 6, 30 runs: 3/6 in 55 of the 60 pages, 2/6 in the rest;
    # the third page 0-3 by what was left), so over all three the share measured what the first pages showed.
    pages = [page(), page(), page()]
    second = [card for cards in pages for card in cards]
    assert len(second) >= 15, "the feed goes on after the likes"
    next_two = pages[0] + pages[1]
    second_share = sum(topic_of[v] == "cooking" for v, *_ in next_two) / len(next_two)
    cars = [s for v, _, _, s in second if topic_of[v] == "cars" and s != "random"]  # as above: random ignores taste
    assert second_share >= 1 / 3, f"cooking {first_share:.0%} -> {second_share:.0%} of the next two pages"
    # Below the quarter a cold feed gives it. Measured here: 2-3 of 18 (the 10-card service page above keeps it
    # at <= 10%); the app's short pages leave the skip signal weaker, a known limit named in the README.
    assert len(cars) <= len(second) // 6, f"the skipped topic still got {len(cars)} of {len(second)} cards: {cars}"
    served = [v for v, *_ in first + second + page()]
    assert hidden not in served and reported not in served
    assert len(served) == len(set(served)), "a video came back within the session"
    for cards in (first, second):
        creators = [c for _, c, *_ in cards]
        assert all(a != b for a, b in zip(creators, creators[1:], strict=False)), creators
        assert all(source and source != "None" for *_, source in cards), [s for *_, s in cards]
