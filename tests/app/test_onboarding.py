"""The first-visit "what are you into?" step seeds a cold feed, and is offered only once."""

from tests.app.helpers import run, services
from tests.app.test_feed_adapts import build_catalogue
from tests.conftest import csrf_of


def test_declared_interests_seed_the_first_page_and_the_step_is_not_offered_again(client):
    topic_of = build_catalogue(client)
    page = client.get("/", headers={"accept": "text/html"})
    assert "What are you into?" in page.text
    for topic in ("cooking", "cars", "cats", "music"):
        assert f'value="{topic}"' in page.text

    chosen = client.post("/onboarding/interests", data={"topics": ["music"]},
                         headers={"x-csrf-token": csrf_of(client), "hx-request": "true"})
    assert chosen.status_code == 200 and chosen.headers.get("hx-refresh") == "true"

    again = client.get("/", headers={"accept": "text/html"})
    assert "What are you into?" not in again.text
    ids = [vid for vid in topic_of if f'data-video-id="{vid}"' in again.text]
    assert ids, "the feed page renders its first cards"
    music_share = sum(topic_of[v] == "music" for v in ids) / len(ids)
    assert music_share >= 0.3, f"declared interest got {music_share:.0%} of the first page"

    assert _session(client).user.preferences["categories"] == ["music"]


def _session(client):
    """The test client's current web session (for reading the visitor it belongs to)."""
    from app.server.web_session import COOKIE_NAME

    return run(client, services(client).sessions.load(client.cookies.get(COOKIE_NAME)))


def test_skipping_marks_the_visitor_onboarded_without_interests(client):
    build_catalogue(client)
    client.get("/", headers={"accept": "text/html"})
    skipped = client.post("/onboarding/interests", data={"skip": "1"},
                          headers={"x-csrf-token": csrf_of(client), "hx-request": "true"})
    assert skipped.status_code == 200 and "hx-refresh" not in skipped.headers
    assert "What are you into?" not in client.get("/", headers={"accept": "text/html"}).text
