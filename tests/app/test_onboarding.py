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


def test_served_reasons_are_the_recommenders_and_picks_never_read_as_likes(client):
    """"Why this video?" on the page shows the recommender's traced reasons (with the creator's handle filled
    in); after only picking #music at onboarding nothing claims "you liked", and a music card says the pick."""
    import html
    import re

    from recommender.reasons import fill

    build_catalogue(client)
    client.get("/", headers={"accept": "text/html"})
    client.post("/onboarding/interests", data={"topics": ["music"]},
                headers={"x-csrf-token": csrf_of(client), "hx-request": "true"})
    page = client.get("/", headers={"accept": "text/html"}).text
    shown = {vid: [html.unescape(li) for li in re.findall(r"<li>(.*?)</li>", body)]
             for vid, body in re.findall(r'<div class="why" id="why-(\w+)" hidden>.*?<ul>(.*?)</ul>', page, re.S)}
    assert shown, "the cards have their reasons"
    trace = services(client).recommender.engine.inspect_user(_session(client).user.id)["last_recommendation"]
    traced = {f["item_id"]: f for f in trace["final"]}
    handles = dict(re.findall(r'data-video-id="(\w+)" data-creator-id="\w+".*?aria-label="Video by @([\w.]+)"', page,
                              re.S))
    assert set(shown) & set(traced), "the page shows the cards the recommender traced"
    for vid, reasons in shown.items():
        if vid in traced:  # the first page: served by the last recommend() call
            assert reasons == [fill(r, handles.get(vid)) for r in traced[vid]["reasons"]], vid
    texts = [r for reasons in shown.values() for r in reasons]
    assert not any("liked" in r.lower() for r in texts), texts
    assert "You picked #music" in texts
    assert not any("Popular right now" in r for r in texts)  # nothing has any views yet
