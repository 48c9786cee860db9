"""A video opened from a grid swipes on through that grid, and its traffic says where it was opened."""

from __future__ import annotations

import json
import re
import time
import uuid

from sqlalchemy import select

from app.db.models import Event
from app.domain.analytics import metrics as am
from tests.app.helpers import run, services
from tests.app.test_accounts import signup
from tests.app.test_interactions import add_ready, hx

HTML = {"accept": "text/html"}
CARDS = re.compile(r'<article class="card[^"]*" id="card-([^"]+)"[^>]*?data-source="([^"]+)"[^>]*?data-feed="([^"]+)"',
                   re.S)


def act(client, video_id: str) -> None:  # noqa: ANN001
    """A first interaction (a beacon with one view), the way the player sends it."""
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/search", headers=HTML).text).group(1)
    view = {"event_id": uuid.uuid4().hex, "type": "view", "video_id": video_id, "watch_duration": 1.0}
    assert client.post("/api/events", content=json.dumps({"csrf": csrf, "events": [view]}),
                       headers={"content-type": "text/plain"}).status_code == 202


def impressions(client, video_id: str) -> list[dict]:  # noqa: ANN001
    async def _query() -> list[dict]:
        async with services(client).db.read() as session:
            rows = (await session.execute(select(Event.additional_info).where(
                Event.event_type == "impression", Event.video_id == video_id))).scalars().all()
        return list(rows)

    return run(client, _query())


def test_profile_grid_becomes_a_feed_of_that_grid_in_order(client):
    ids = []
    for caption in ("one #clay", "two #clay", "three"):
        ids.append(add_ready(client, creator="maya", caption=caption, hashtags=["clay"] if "clay" in caption else []))
        time.sleep(0.01)
    add_ready(client, creator="other", caption="elsewhere #clay", hashtags=["clay"])
    newest_first = list(reversed(ids))
    profile = client.get("/@maya", headers=HTML).text
    assert f'href="/v/{newest_first[0]}?from=profile%3Amaya"' in profile

    page = client.get(f"/v/{newest_first[1]}", params={"from": "profile:maya"}, headers=HTML).text
    cards = CARDS.findall(page)
    assert [c[0] for c in cards] == newest_first[1:]  # from the tapped tile on, in the grid's order
    assert {(c[1], c[2]) for c in cards} == {("profile", "profile")}
    assert 'data-end="grid"' in page and 'href="/@maya">Back to @maya</a>' in page and "feed-loader" not in page
    assert "You opened it from @maya&#39;s profile" in page
    assert impressions(client, newest_first[1]) == []  # a reading visitor writes nothing...
    act(client, ids[2])  # ...until it acts: then what it was shown is stored with its guest
    [info] = impressions(client, newest_first[1])
    assert info["source"] == "profile" and info["feed"] == "profile"
    assert am.traffic_source(info) == "Profile"

    tag = client.get(f"/v/{ids[0]}", params={"from": "tag:clay"}, headers=HTML).text
    assert [c[0] for c in CARDS.findall(tag)] == [ids[0]]  # the oldest #clay video is the grid's last
    assert am.traffic_source(impressions(client, ids[0])[-1]) == "Hashtag"


def test_shared_typed_search_and_saved_links_are_told_apart(client):
    video = add_ready(client, creator="leo", caption="fractal zoom")
    client.get(f"/v/{video}", params={"share": "1"}, headers=HTML)
    client.get(f"/v/{video}", headers=HTML)
    client.get(f"/v/{video}", params={"from": "search:fractal"}, headers=HTML)
    signup(client, username="saver")
    client.post(f"/videos/{video}/save", headers=hx(client))
    saved = client.get("/saved", headers=HTML).text
    assert f'href="/v/{video}?from=saved"' in saved
    page = client.get(f"/v/{video}", params={"from": "saved"}, headers=HTML).text
    assert "You saved it" in page
    # (The feed page that signing up lands on logs its own For You impression.)
    sources = [am.traffic_source(info) for info in impressions(client, video) if info["feed"] != "foryou"]
    assert sources == ["Share link", "Direct link", "Search", "Saved"]
    assert 'data-url="/v/' + video + '?share=1"' in page  # the share button hands out the share parameter
    # A "creator" candidate from the recommender is For You traffic, not a profile visit.
    assert am.traffic_source({"source": "creator", "feed": "foryou"}) == "For You"
