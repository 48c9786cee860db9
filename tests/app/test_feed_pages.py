"""The feed page, its htmx pages of cards, and the other pages: permalink, profile, hashtag, saved, search."""

import json
import re
import time

import pytest

from tests.app.helpers import add_video, run, services
from tests.app.test_accounts import signup
from tests.app.test_interactions import add_ready, hx
from tests.conftest import csrf_of

pytestmark = pytest.mark.both_databases

HTML = {"accept": "text/html"}
CARD_IDS = re.compile(r'<article class="card[^"]*" id="card-([^"]+)"')


def test_feed_pages_through_the_catalogue_once_then_says_caught_up(client, settings):
    videos = {add_ready(client, creator=f"maker{i}", caption=f"clip {i}") for i in range(settings.feed_page_size + 2)}
    page = client.get("/", headers=HTML)
    assert page.status_code == 200
    first = CARD_IDS.findall(page.text)
    assert len(first) == settings.feed_page_size
    assert 'data-skip-threshold-s="2.0"' in page.text
    assert f'data-skip-threshold-ratio="{settings.skip_threshold_ratio}"' in page.text
    assert 'data-skip-short-clip-s="6.0"' in page.text
    assert '<link rel="stylesheet" href="/static/css/feed.css">' in page.text
    loader = re.search(r'class="feed-loader" hx-get="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    assert loader == f"/feed/cards?tab=foryou&cursor={settings.feed_page_size}"
    assert 'hx-trigger="intersect once, nearend once"' in page.text

    more = client.get(loader, headers={"hx-request": "true"})
    assert more.status_code == 200 and "<html" not in more.text  # only the cards block
    second = CARD_IDS.findall(more.text)
    assert len(second) == 2 and not set(first) & set(second)
    assert set(first) | set(second) == videos
    assert 'data-position="6"' in more.text

    done = client.get("/feed/cards?tab=foryou&cursor=8", headers={"hx-request": "true"})
    assert CARD_IDS.findall(done.text) == [] and "You're all caught up" in done.text
    assert "feed-loader" not in done.text
    # Reloading the page does not bring served videos back either.
    assert CARD_IDS.findall(client.get("/", headers=HTML).text) == []


def test_cards_carry_everything_the_player_and_actions_need(client):
    video = add_ready(client, caption="Look at this #Cats video", hashtags=["cats"], transcript="meow", width=360,
                      height=640)
    page = client.get("/", headers=HTML).text
    card = page[page.index(f'id="card-{video}"'):]
    for needle in (f'src="/media/{video}/video.mp4"', f'poster="/media/{video}/poster.jpg"', "playsinline", "loop",
                   "muted", f'<track kind="captions" src="/media/{video}/captions.vtt"', 'href="/tag/cats"',
                   'hx-post="/videos/' + video + '/like"', 'aria-label="Like (0 likes)"', 'aria-pressed="false"',
                   f'hx-get="/videos/{video}/comments"', f'id="ccount-{video}"', 'data-action="share"',
                   'hx-post="/creators/u_creator/follow"', 'aria-label="Follow @creator"', "Why this video?",
                   "Not interested", "Don't show videos from @creator", 'name="reason" value="spam"',
                   'data-action="captions"', 'data-action="mute"', 'href="/@creator"'):
        assert needle in card, needle
    # The card's context travels with every action (htmx inherits hx-vals) into the events' additional_info.
    context = json.loads(re.search(r"hx-vals='([^']+)'", card).group(1))
    assert context["position"] == 0 and context["feed"] == "foryou" and context["source"] and context["request_id"]


def test_following_tab_asks_guests_to_log_in_and_shows_followed_creators(client):
    followed = add_ready(client, creator="fave")
    add_ready(client, creator="other")
    guest = client.get("/?tab=following", headers=HTML).text
    assert "See videos from creators you follow" in guest and "/login?next=%2F%3Ftab%3Dfollowing" in guest
    assert 'aria-current="page">Following' in guest

    signup(client, username="fan")
    empty = client.get("/?tab=following", headers=HTML).text
    assert "Nothing from creators you follow yet" in empty
    client.post("/creators/u_fave/follow", headers=hx(client))
    page = client.get("/?tab=following", headers=HTML).text
    assert CARD_IDS.findall(page) == [followed]
    assert 'data-source="following"' in page


def test_permalink_is_shareable_with_open_graph_tags(client):
    video = add_ready(client, caption="Sunset at the pier", width=360, height=640)
    page = client.get(f"/v/{video}", headers=HTML)
    assert page.status_code == 200
    assert CARD_IDS.findall(page.text)[0] == video
    base = client.app.state.settings.resolved_public_url  # absolute URLs use the configured public address
    for needle in ('<meta property="og:title" content="creator (@creator) on ForYou">',
                   '<meta property="og:description" content="Sunset at the pier">',
                   f'<meta property="og:url" content="{base}/v/{video}">',
                   f'<meta property="og:image" content="{base}/media/{video}/poster.jpg">',
                   f'<meta property="og:video" content="{base}/media/{video}/video.mp4">',
                   '<meta property="og:video:width" content="360">', 'data-source="direct"',
                   "/feed/cards?tab=foryou&amp;cursor=1"):
        assert needle in page.text, needle
    assert 'data-open-comments="1"' in client.get(f"/v/{video}?comments=1", headers=HTML).text
    # The For You feed that follows does not repeat it.
    assert video not in CARD_IDS.findall(client.get("/feed/cards?cursor=1", headers={"hx-request": "true"}).text)
    assert client.get("/v/v_missing", headers=HTML).status_code == 404
    assert client.get(f"/v/{add_video(client, state='processing')}", headers=HTML).status_code == 404


def test_profile_shows_counts_videos_and_a_follow_button(client):
    video = add_ready(client, creator="maya", caption="hello")
    add_video(client, creator="maya", state="processing", caption="not yet")
    signup(client, username="fan")
    client.post("/creators/u_maya/follow", headers=hx(client))
    client.post(f"/videos/{video}/like", headers=hx(client))
    page = client.get("/@maya", headers=HTML)
    assert page.status_code == 200
    text = page.text
    assert "<h1>maya</h1>" in text and "@maya" in text
    assert '<strong id="followers-u_maya" data-followers-of="u_maya">1</strong> Followers' in text
    assert "<strong>1</strong> Likes" in text and "<strong>0</strong> Following" in text
    assert f'href="/v/{video}?from=profile%3Amaya"' in text and "not yet" not in text
    assert 'aria-pressed="true"' in text and 'hx-delete="/creators/u_maya/follow"' in text
    assert client.get("/@MAYA", headers=HTML).status_code == 200
    assert client.get("/@nobody", headers=HTML).status_code == 404
    assert client.get("/maya", headers=HTML).status_code == 404
    own = client.get("/@fan", headers=HTML).text
    assert "Your saved videos" in own and "follow-button" not in own


def test_hashtag_page(client):
    tagged = add_ready(client, caption="a #cat", hashtags=["cat"])
    add_ready(client, creator="two", caption="a #catalogue", hashtags=["catalogue"])
    page = client.get("/tag/cat", headers=HTML).text
    assert "<h1>#cat</h1>" in page and f'href="/v/{tagged}?from=tag%3Acat"' in page and page.count('class="tile"') == 1
    assert "No videos with #nothing yet" in client.get("/tag/nothing", headers=HTML).text


def test_saved_page_needs_an_account_and_lists_saves(client):
    assert client.get("/saved", headers=HTML, follow_redirects=False).headers["location"] == "/login?next=/saved"
    video = add_ready(client)
    signup(client, username="keeper")
    assert "Nothing saved yet" in client.get("/saved", headers=HTML).text
    client.post(f"/videos/{video}/save", headers=hx(client))
    assert f'href="/v/{video}?from=saved"' in client.get("/saved", headers=HTML).text


def test_search_matches_captions_hashtags_transcripts_and_creators(client):
    by_caption = add_ready(client, creator="alice", caption="Baking sourdough bread")
    by_tag = add_ready(client, creator="bakerbob", caption="morning", hashtags=["sourdough"])
    by_transcript = add_ready(client, creator="carl", caption="kitchen", transcript="today we make SOURDOUGH")
    add_ready(client, creator="dora", caption="unrelated")
    add_video(client, creator="erin", state="processing", caption="sourdough draft")
    page = client.get("/search?q=sourdough", headers=HTML).text
    found = set(re.findall(r'href="/v/([^"?]+)', page))
    assert found == {by_caption, by_tag, by_transcript}
    creators = client.get("/search?q=baker", headers={"hx-request": "true"}).text
    assert 'href="/@bakerbob"' in creators and "<html" not in creators  # htmx gets the results block only
    assert "Popular hashtags" in client.get("/search", headers=HTML).text
    assert "No videos match" in client.get("/search?q=%25%25", headers=HTML).text  # LIKE wildcards are escaped


def test_search_has_a_hook_for_semantic_search(client):
    keyword = add_ready(client, creator="alice", caption="dogs playing")
    semantic = add_ready(client, creator="bob", caption="puppies at the beach")
    calls = []

    async def semantic_search(query, limit):
        calls.append((query, limit))
        return [semantic, "v_unknown"]

    client.app.state.semantic_search = semantic_search
    page = client.get("/search?q=dogs", headers=HTML).text
    assert calls == [("dogs", 60)]
    hits = re.findall(r'href="/v/([^"?]+)', page)
    assert hits == [keyword, semantic]  # word matches first, then by meaning; unknown ids dropped


def test_a_guests_impressions_are_logged_once_it_acts(client):
    """A reading visitor writes nothing (see test_lazy_guests); its first beacon stores the guest and the
    impressions of what it was shown."""
    video = add_ready(client)
    csrf = csrf_of(client)

    async def _impressions():
        from sqlalchemy import select

        from app.db.models import Event

        async with services(client).db.read() as session:
            return (await session.execute(select(Event).where(Event.event_type == "impression"))).scalars().all()

    assert run(client, _impressions()) == []
    view = {"event_id": "e" * 32, "type": "view", "video_id": video, "watch_duration": 1.0}
    beacon = {"csrf": csrf, "events": [view]}
    assert client.post("/api/events", content=json.dumps(beacon), headers={"content-type": "text/plain"}
                       ).status_code == 202
    [impression] = run(client, _impressions())
    assert impression.user_id and impression.additional_info["feed"] == "foryou"


def test_cached_card_markup_follows_edits_and_keeps_each_viewer_own_state(client):
    """The card's per-video markup is rendered once and reused (templates/components/card.html): an edit shows at
    once, and the viewer's own parts (CSRF token, like state and counts) are never shared between viewers."""
    from sqlalchemy import update

    from app.db.models import User, Video

    video = add_ready(client, creator="maya", caption="first words")
    guest = client.get(f"/v/{video}", headers=HTML).text
    guest_csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', guest).group(1)
    assert f'name="csrf_token" value="{guest_csrf}"' in guest
    assert "first words" in guest and 'aria-label="Like (0 likes)"' in guest

    async def edit(statement) -> None:  # noqa: ANN001
        async with services(client).db.write() as session:
            await session.execute(statement)

    run(client, edit(update(Video).where(Video.id == video).values(caption="second words")))
    edited = client.get(f"/v/{video}", headers=HTML).text
    assert "second words" in edited and "first words" not in edited
    run(client, edit(update(User).where(User.id == "u_maya").values(username="maya2")))
    signup(client, username="fan")
    client.post(f"/videos/{video}/like", headers=hx(client))
    fan = client.get(f"/v/{video}", headers=HTML).text
    fan_csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', fan).group(1)
    assert fan_csrf != guest_csrf
    assert f'name="csrf_token" value="{fan_csrf}"' in fan and guest_csrf not in fan
    assert "second words" in fan and "first words" not in fan
    assert 'href="/@maya2"' in fan and "Don't show videos from @maya2" in fan and 'href="/@maya"' not in fan
    assert 'aria-label="Unlike (1 like)"' in fan and 'aria-pressed="true"' in fan


def test_a_feed_request_waits_for_its_own_viewers_events_only(client):
    """``caught_up(user)``: a feed reflects its viewer's last swipe, without queueing behind other viewers'
    events that the recommender's worker has not applied yet."""
    from app.domain.events.writer import EventIn, StoredEvent

    recommender = services(client).recommender
    video = add_ready(client)
    busy = StoredEvent(EventIn(event_id="e1", event_type="like", user_id="u_busy", video_id=video), True, None)
    with recommender.engine._state.lock:  # the worker stalls on the lock with u_busy's batch in hand
        recommender.on_events([busy])
        assert recommender.caught_up("u_idle", timeout=0.05)
        assert not recommender.caught_up("u_busy", timeout=0.05)
        # The same wait on the event loop (what a feed request does, holding no thread): woken by the worker.
        assert run(client, recommender.wait_caught_up("u_idle", timeout=0.05))
        assert not run(client, recommender.wait_caught_up("u_busy", timeout=0.05))
        waiting = client.blocking_portal.start_task_soon(recommender.wait_caught_up, "u_busy", 5.0)
        time.sleep(0.1)
        assert not waiting.done()
    assert waiting.result(timeout=5.0) is True
    assert recommender.caught_up("u_busy", timeout=5.0) and recommender.caught_up(timeout=5.0)
    assert not recommender._waiters
