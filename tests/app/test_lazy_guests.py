"""A visitor who only reads costs no database write (issue 12, item 4): no session row, no guest, no event.

The session and the guest are stored on the first interaction that needs them (a beacon, a like), with the
CSRF token the cookieless page was given, and the impressions of what that visitor was shown come with them.
"""

import json
import re
import uuid

import pytest
from sqlalchemy import func, select

from app.db.models import AuthSession, Event, Like, SQLModel, User
from app.server.web_session import COOKIE_NAME
from tests.app.helpers import run, services
from tests.app.test_interactions import add_ready

pytestmark = pytest.mark.both_databases

HTML = {"accept": "text/html"}
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
CARD_IDS = re.compile(r'<article class="card[^"]*" id="card-([^"]+)"')


def row_counts(client) -> dict[str, int]:
    """Rows in every table of the schema."""
    async def _count() -> dict[str, int]:
        async with services(client).db.read() as session:
            return {name: (await session.execute(select(func.count()).select_from(table))).scalar_one()
                    for name, table in SQLModel.metadata.tables.items()}

    return run(client, _count())


def test_cookieless_reads_write_nothing(client):
    videos = [add_ready(client, creator=f"maker{i}", caption=f"clip {i} #cats", hashtags=["cats"]) for i in range(3)]
    before = row_counts(client)
    for _ in range(5):
        client.cookies.clear()
        for path in ("/", "/search?q=clip", f"/v/{videos[0]}", "/feed/cards?tab=foryou&cursor=0", "/tag/cats",
                     f"/v/{videos[1]}?share=1", "/@maker1"):
            response = client.get(path, headers=HTML)
            assert response.status_code == 200, path
            assert COOKIE_NAME in response.cookies or client.cookies.get(COOKIE_NAME)
    assert row_counts(client) == before


def test_a_reading_visitor_keeps_its_session_and_its_first_beacon_creates_the_guest_once(client):
    videos = [add_ready(client, creator=f"maker{i}", caption=f"clip {i}") for i in range(3)]
    before = row_counts(client)
    page = client.get("/", headers=HTML)
    token = client.cookies.get(COOKIE_NAME)
    csrf = CSRF.search(page.text).group(1)
    shown = CARD_IDS.findall(page.text)
    assert shown
    # The same cookie is the same (pending) session: same CSRF token, and the feed does not repeat itself.
    again = client.get("/", headers=HTML)
    assert CSRF.search(again.text).group(1) == csrf and client.cookies.get(COOKIE_NAME) == token
    assert not set(CARD_IDS.findall(again.text)) & set(shown)
    assert row_counts(client) == before

    # A forged token is still refused, and stores nothing.
    forged = client.post("/api/events", content=json.dumps({"csrf": "forged", "events": [
        {"event_id": uuid.uuid4().hex, "type": "view", "video_id": videos[0], "watch_duration": 2.0}]}),
        headers={"content-type": "text/plain"})
    assert forged.status_code == 403
    assert row_counts(client) == before

    def beacon():
        return client.post("/api/events", content=json.dumps({"csrf": csrf, "events": [
            {"event_id": uuid.uuid4().hex, "type": "view", "video_id": shown[0], "watch_duration": 2.0}]}),
            headers={"content-type": "text/plain"})

    assert beacon().status_code == 202
    assert beacon().status_code == 202
    after = row_counts(client)
    assert after["users"] == before["users"] + 1 and after["auth_sessions"] == before["auth_sessions"] + 1

    async def _state():
        async with services(client).db.read() as session:
            guest = (await session.execute(select(User).where(User.is_guest.is_(True)))).scalar_one()
            sessions = (await session.execute(select(AuthSession))).scalars().all()
            events = (await session.execute(select(Event))).scalars().all()
            return guest, sessions, events

    guest, sessions, events = run(client, _state())
    assert [s.user_id for s in sessions] == [guest.id] and sessions[0].csrf_token == csrf
    assert {e.user_id for e in events} == {guest.id}
    # The impressions of what the visitor was shown before the beacon are stored with the guest.
    impressions = {e.video_id for e in events if e.event_type == "impression"}
    assert set(shown) <= impressions
    assert sum(e.event_type == "view" for e in events) == 2

    # The same page's CSRF token keeps working for an htmx action (a like).
    liked = client.post(f"/videos/{shown[0]}/like", headers={"hx-request": "true", "x-csrf-token": csrf})
    assert liked.status_code == 200
    assert run(client, _likes_query(client)) == [(guest.id, shown[0])]
    assert row_counts(client)["users"] == before["users"] + 1


async def _likes_query(client):
    async with services(client).db.read() as session:
        return [tuple(r) for r in (await session.execute(select(Like.user_id, Like.video_id))).all()]


def test_a_like_from_a_cookieless_page_works_with_its_csrf_token(client):
    video = add_ready(client)
    page = client.get(f"/v/{video}", headers=HTML)
    csrf = CSRF.search(page.text).group(1)
    assert client.post(f"/videos/{video}/like", headers={"hx-request": "true", "x-csrf-token": "nope"}
                       ).status_code == 403
    assert client.post(f"/videos/{video}/like", headers={"hx-request": "true", "x-csrf-token": csrf}
                       ).status_code == 200
    likes = run(client, _likes_query(client))
    assert len(likes) == 1 and likes[0][1] == video


def test_a_signed_up_guests_old_cookie_does_not_come_back_as_the_account(client):
    from tests.app.test_accounts import signup

    video = add_ready(client)
    page = client.get("/", headers=HTML)
    csrf = CSRF.search(page.text).group(1)
    old = client.cookies.get(COOKIE_NAME)
    assert client.post("/api/events", content=json.dumps({"csrf": csrf, "events": [
        {"event_id": uuid.uuid4().hex, "type": "view", "video_id": video, "watch_duration": 2.0}]}),
        headers={"content-type": "text/plain"}).status_code == 202
    assert signup(client, username="gina", csrf=csrf).status_code == 200
    # The pre-sign-up token (rotated away) is a stranger now: a new pending visitor, not the account.
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, old)
    replay = client.get("/", headers=HTML)
    assert "Log out" not in replay.text
    assert replay.cookies.get(COOKIE_NAME) not in (None, old)  # a fresh token is issued


def test_another_cookies_odd_value_does_not_cost_the_visitor_its_session(client):
    """The browser sends every cookie of the site in one header: a value the strict cookie grammar refuses (a
    space, as some analytics scripts write) before ours used to lose the session (a fresh one each request)."""
    add_ready(client, creator="maker", caption="clip")
    page = client.get("/", headers=HTML)
    token, csrf = client.cookies.get(COOKIE_NAME), CSRF.search(page.text).group(1)
    client.cookies.clear()
    again = client.get("/", headers={**HTML, "cookie": f"tracker=a b; {COOKIE_NAME}={token}"})
    assert CSRF.search(again.text).group(1) == csrf
    assert COOKIE_NAME not in again.cookies  # no new session issued
