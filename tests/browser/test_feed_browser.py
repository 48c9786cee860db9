"""The swipe feed in a real browser (Debian chromium driven by Playwright) against a live server."""

from __future__ import annotations

import json

import pytest

from tests.browser.conftest import CAPTIONED, CATALOGUE

pytestmark = pytest.mark.browser

ALL_IDS = {vid for vid, *_ in CATALOGUE}
ACTIVE = "#feed .card.is-active"


def wait_htmx_ready(page, selector: str) -> None:  # noqa: ANN001
    """htmx wires swapped-in content up when it settles (~20 ms later): wait for that before using it."""
    page.wait_for_function(
        "(s) => { const el = document.querySelector(s); return !!(el && el['htmx-internal-data']); }", arg=selector)


class Page:
    """A thin helper around a Playwright page on the feed, which also collects JavaScript errors."""

    def __init__(self, context, path: str = "/") -> None:  # noqa: ANN001
        self.page = context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto(path)
        self.page.wait_for_selector("#feed")
        skip = self.page.locator("#onboarding button[name=skip]")
        if skip.count():  # a first visit asks for interests (nothing plays meanwhile); these tests skip it
            skip.click()
            self.page.wait_for_selector("#onboarding", state="detached")
        self.page.wait_for_selector(ACTIVE)

    def active_id(self) -> str | None:
        return self.page.evaluate(f"document.querySelector('{ACTIVE}')?.dataset.videoId || null")

    def wait_playing(self, past: float = 0.2, timeout: float = 10_000) -> float:
        self.page.wait_for_function(
            """(past) => { const v = document.querySelector('#feed .card.is-active video.player');
                           return v && !v.paused && v.currentTime > past; }""",
            arg=past, timeout=timeout)
        return self.current_time()

    def current_time(self) -> float:
        return self.page.evaluate(f"document.querySelector('{ACTIVE} video.player').currentTime")

    def playing(self) -> list[str]:
        return self.page.evaluate("""Array.from(document.querySelectorAll('video.player'))
            .filter(v => !v.paused).map(v => v.closest('.card').dataset.videoId)""")

    def wait_active_change(self, previous: str | None) -> str:
        self.page.wait_for_function(
            """(prev) => { const c = document.querySelector('#feed .card.is-active');
                           return c && (c.dataset.videoId || c.dataset.end) !== prev; }""", arg=previous)
        return self.active_id()

    def wait_scroll_settled(self) -> None:
        """The smooth scroll has come to rest on the active card."""
        self.page.wait_for_function(
            """() => { const f = document.getElementById('feed'), c = f.querySelector('.card.is-active');
                       return c && Math.abs(f.scrollTop - c.offsetTop) < 2; }""")

    def advance(self) -> None:
        """One card down; at the end of the list, wait for htmx to bring more cards (or the caught-up card)."""
        state = self.page.evaluate("""() => { const c = document.querySelector('#feed .card.is-active');
            return [c ? (c.dataset.videoId || c.dataset.end) : null,
                    document.querySelectorAll('#feed > .card').length]; }""")
        self.page.keyboard.press("ArrowDown")
        self.page.wait_for_function(
            """([prev, n]) => { const c = document.querySelector('#feed .card.is-active');
                                return (c && (c.dataset.videoId || c.dataset.end) !== prev)
                                       || document.querySelectorAll('#feed > .card').length !== n; }""", arg=state)

    def played_seconds(self, video_id: str) -> float:
        """How much of the video the browser actually played (its played time ranges), not the wall clock."""
        return self.page.evaluate(
            """(id) => { const v = document.querySelector(`#card-${id} video.player`); let total = 0;
                         for (let i = 0; i < v.played.length; i++) total += v.played.end(i) - v.played.start(i);
                         return total; }""", video_id)

    def card_ids(self) -> list[str]:
        return self.page.evaluate("Array.from(document.querySelectorAll('#feed > .card[data-video-id]'))"
                                  ".map(c => c.dataset.videoId)")

    def swipe_up(self, context) -> None:  # noqa: ANN001
        """A real touch gesture (CDP touch events, as a finger would make them) from low to high."""
        cdp = context.new_cdp_session(self.page)
        x, y0, y1 = 180, 620, 220
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y0}]})
        for step in range(1, 7):
            y = y0 + (y1 - y0) * step / 6
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        cdp.detach()


def test_guest_feed_plays_one_video_at_a_time_and_keys_move_one_card(desktop, live_server, artifacts):
    feed = Page(desktop)
    first = feed.active_id()
    assert first in ALL_IDS
    feed.wait_playing(0.5)
    assert feed.playing() == [first]
    assert feed.page.evaluate(f"document.querySelector('{ACTIVE} video').muted") is True  # autoplay starts muted
    feed.page.wait_for_timeout(300)
    feed.page.screenshot(path=str(artifacts / "feed-desktop.png"))

    feed.page.keyboard.press("ArrowDown")
    second = feed.wait_active_change(first)
    feed.wait_playing(0.2)
    assert feed.playing() == [second]  # the first one paused: one video at a time
    feed.page.keyboard.press("j")
    third = feed.wait_active_change(second)
    feed.page.keyboard.press("k")
    assert feed.wait_active_change(third) == second
    feed.wait_playing(0.1)
    feed.page.mouse.move(640, 400)
    feed.page.mouse.wheel(0, 150)  # a mouse wheel notch: one card
    assert feed.wait_active_change(second) == third
    feed.wait_scroll_settled()

    # Keep going: more cards come through htmx, and the tiny catalogue runs dry into the caught-up card.
    for _ in range(24):
        if feed.page.locator("[data-end='caught-up'].is-active").count():
            break
        feed.advance()
        feed.wait_scroll_settled()
    assert feed.page.locator("[data-end='caught-up']").is_visible()
    assert "You're all caught up" in feed.page.inner_text("[data-end='caught-up']")
    assert feed.playing() == []
    ids = feed.card_ids()
    assert sorted(ids) == sorted(ALL_IDS)  # every video once, none twice
    feed.page.screenshot(path=str(artifacts / "feed-desktop-caught-up.png"))
    assert feed.errors == []


def test_phone_touch_swipe_and_double_tap_like(phone, live_server, artifacts):
    feed = Page(phone)
    first = feed.active_id()
    feed.wait_playing(0.6)
    feed.page.screenshot(path=str(artifacts / "feed-phone.png"))

    feed.swipe_up(phone)
    second = feed.wait_active_change(first)
    assert second in ALL_IDS
    feed.wait_playing(0.2)
    assert feed.playing() == [second]
    # Exactly one card down once the smooth scroll settles (a card is the viewport above the bottom bar).
    feed.page.wait_for_function("""() => { const feed = document.getElementById('feed');
        const card = feed.querySelector(':scope > .card');
        return card.offsetHeight > 700 && Math.abs(feed.scrollTop - card.offsetHeight) < 2; }""", timeout=3000)

    like = feed.page.locator(f"#card-{second} [data-action='like']")
    assert like.get_attribute("aria-pressed") == "false"
    assert like.locator(".count").inner_text() == "0"
    box = feed.page.locator(f"#card-{second} .tap-layer").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    feed.page.touchscreen.tap(x, y)
    feed.page.wait_for_timeout(60)
    feed.page.touchscreen.tap(x, y)
    feed.page.wait_for_selector(f"#card-{second} .heart-pop", state="attached", timeout=900)
    like = feed.page.locator(f"#card-{second} [data-action='like']")
    feed.page.wait_for_function(
        f"() => document.querySelector('#card-{second} [data-action=like]').getAttribute('aria-pressed') === 'true'")
    assert like.locator(".count").inner_text() == "1"
    feed.page.screenshot(path=str(artifacts / "feed-phone-liked.png"))
    feed.page.wait_for_timeout(400)
    assert feed.playing() == [second]  # a double tap likes; it does not pause
    rows = live_server.wait_for("SELECT user_id FROM events WHERE event_type='like' AND video_id=?", second)
    assert len(rows) == 1
    assert live_server.query("SELECT count(*) FROM likes WHERE video_id=? AND user_id=?", second, rows[0][0]) == [(1,)]

    # Tapping the like button again undoes it (an unlike event), count back to 0.
    like.click()
    feed.page.wait_for_function(
        f"() => document.querySelector('#card-{second} [data-action=like]').getAttribute('aria-pressed') === 'false'")
    assert live_server.wait_for("SELECT 1 FROM events WHERE event_type='unlike' AND video_id=?", second)
    assert feed.errors == []


def test_watch_time_is_measured_and_a_fast_swipe_is_a_skip(desktop, live_server):
    feed = Page(desktop)
    first = feed.active_id()
    request_id = feed.page.get_attribute(f"#card-{first}", "data-request-id")  # this page's cards only
    feed.wait_playing(3.0)  # about three seconds of the six-second clip, by the video's own clock
    feed.page.keyboard.press("ArrowDown")
    second = feed.wait_active_change(first)
    feed.wait_playing(0.05)
    feed.page.keyboard.press("ArrowDown")  # away again well before the skip threshold
    feed.wait_active_change(second)
    feed.page.wait_for_function(f"() => document.querySelector('#card-{second} video.player').paused")
    played, played_second = feed.played_seconds(first), feed.played_seconds(second)

    rows = live_server.wait_for(
        "SELECT watch_duration, additional_info FROM events WHERE event_type='view' AND video_id=? "
        "AND json_extract(additional_info, '$.final') AND json_extract(additional_info, '$.request_id')=?",
        first, request_id)
    assert rows, "no final view event arrived for the first video"
    watch, info = rows[0][0], json.loads(rows[0][1])
    assert watch >= 3.0 and abs(watch - played) <= 0.25, (watch, played)  # what played, by the page's own measure
    assert info["feed"] == "foryou" and info["position"] == 0 and info["source"] and info["request_id"]
    assert info["video_duration"] == pytest.approx(6.0, abs=0.2)
    mine = "json_extract(additional_info, '$.request_id')=?"
    assert not live_server.query(f"SELECT 1 FROM events WHERE event_type='skip' AND video_id=? AND {mine}",
                                 first, request_id)
    skips = live_server.wait_for(f"SELECT watch_duration FROM events WHERE event_type='skip' AND video_id=? AND {mine}",
                                 second, request_id)
    assert skips and skips[0][0] <= played_second + 0.25 and skips[0][0] < 1.0, (skips, played_second)
    assert feed.errors == []


def test_not_interested_removes_the_card_for_good(phone, live_server, artifacts):
    feed = Page(phone)
    first = feed.active_id()
    feed.wait_playing(0.1)
    feed.page.click(f"#card-{first} [data-action='more']")
    sheet = feed.page.locator(f"#sheet-{first}")
    assert sheet.is_visible()
    feed.page.wait_for_timeout(300)  # the panel slides up
    feed.page.click(f"#card-{first} [data-action='why']")
    assert feed.page.locator(f"#why-{first}").is_visible()
    feed.page.screenshot(path=str(artifacts / "feed-phone-options.png"))
    sheet.get_by_role("button", name="Not interested").click()
    feed.page.wait_for_selector(f"#card-{first}", state="detached")
    second = feed.wait_active_change(first)
    assert second != first
    feed.wait_playing(0.1)

    assert live_server.wait_for("SELECT 1 FROM events WHERE event_type='hide' AND video_id=?", first)
    hidden_by = live_server.query("SELECT user_id FROM hidden_videos WHERE video_id=?", first)
    assert len(hidden_by) == 1

    # Even after "start over" (which forgets what this session was served), the hidden video stays away.
    status = feed.page.evaluate("""fetch('/feed/restart', {method: 'POST', headers:
        {'X-CSRF-Token': window.ForYou.csrf(), 'HX-Request': 'true'}}).then(r => r.status)""")
    assert status == 200
    feed.page.reload()
    feed.page.wait_for_selector(ACTIVE)
    ids = feed.card_ids()
    assert first not in ids and second in ids
    assert feed.errors == []


def test_comment_as_a_guest_signs_up_in_the_sheet_then_likes_replies_follows_and_saves(desktop, live_server,
                                                                                      artifacts):
    feed = Page(desktop)
    feed.advance()  # not the first card: the feed must keep its place through the sign-up
    video = feed.wait_active_change(None)
    feed.wait_scroll_settled()
    scroll = feed.page.evaluate("document.getElementById('feed').scrollTop")
    url = feed.page.url
    feed.page.click(f"#card-{video} [data-action='comments']")
    drawer = feed.page.locator("#comments-drawer")
    drawer.locator("input[name=text]").wait_for()
    wait_htmx_ready(feed.page, "#comments-drawer .comment-form")
    feed.page.fill("#comments-drawer input[name=text]", "What a lovely   clip! #Retro @nina")
    feed.page.keyboard.press("Enter")
    # The sign-in sheet opens over the page (no navigation); "Create an account" swaps to sign-up inside it.
    feed.page.wait_for_selector("#auth-sheet:not([hidden]) #login-form")
    assert feed.page.url == url
    feed.page.click("#auth-sheet [data-action='auth-switch']")
    feed.page.wait_for_selector("#auth-sheet #signup-form")
    feed.page.fill("#auth-sheet input[name=username]", "maya")  # taken: the error shows in the sheet
    feed.page.fill("#auth-sheet input[name=password]", "a long enough password")
    feed.page.click("#auth-sheet #signup-form button[type=submit]")
    feed.page.wait_for_selector("#auth-sheet #signup-form .form-error")
    feed.page.screenshot(path=str(artifacts / "auth-sheet-desktop-error.png"))
    feed.page.fill("#auth-sheet input[name=username]", "commenter")
    feed.page.fill("#auth-sheet input[name=password]", "a long enough password")
    feed.page.click("#auth-sheet #signup-form button[type=submit]")

    # Signed in where they were, and the comment they wrote is posted.
    feed.page.wait_for_selector("#comments-drawer .comment-text")
    feed.page.wait_for_selector("#auth-sheet", state="hidden")
    assert feed.page.url == url and feed.active_id() == video
    assert abs(feed.page.evaluate("document.getElementById('feed').scrollTop") - scroll) <= 2
    assert feed.page.locator("#side-rail a[href='/@commenter']").count() == 1
    assert feed.page.inner_text("#comments-drawer .comment-text") == "What a lovely clip! #Retro @nina"
    assert feed.page.locator("#comments-drawer .comment-text a.hashtag[href='/tag/retro']").count() == 1
    assert feed.page.locator("#comments-drawer .comment-text a.mention[href='/@nina']").count() == 1
    assert feed.page.inner_text(f"#ccount-{video}") == "1"
    assert feed.page.locator("#comments-drawer [name=text]").input_value() == ""
    rows = live_server.wait_for("SELECT additional_info FROM events WHERE event_type='comment' AND video_id=?", video)
    assert json.loads(rows[0][0])["text"] == "What a lovely clip! #Retro @nina"
    assert live_server.query("SELECT text FROM comments WHERE video_id=?", video) == [
        ("What a lovely clip! #Retro @nina",)]

    # Like the comment, then reply to it (one level).
    feed.page.click("#comments-drawer .comment-like")
    feed.page.wait_for_selector("#comments-drawer .comment-like[aria-pressed='true']")
    assert feed.page.inner_text("#comments-drawer .comment-like .count") == "1"
    assert live_server.wait_for("SELECT 1 FROM comment_likes")
    wait_htmx_ready(feed.page, "#comments-drawer .comment-form")
    feed.page.click("#comments-drawer [data-action='reply']")
    assert feed.page.locator("#comments-drawer [name=text]").input_value() == "@commenter "
    feed.page.type("#comments-drawer input[name=text]", "thanks!")
    feed.page.keyboard.press("Enter")
    feed.page.wait_for_selector("#comments-drawer .replies .comment-text")
    assert feed.page.inner_text("#comments-drawer .replies .comment-text") == "@commenter thanks!"
    assert feed.page.inner_text(f"#ccount-{video}") == "2"
    feed.page.screenshot(path=str(artifacts / "comments-desktop.png"))

    # Delete it again (own comments only): its reply goes with it.
    feed.page.once("dialog", lambda dialog: dialog.accept())
    feed.page.click("#comments-drawer .comment:not(.reply) > .comment-main > .comment-tools .delete-comment")
    feed.page.wait_for_selector("#comments-drawer .comment-empty")
    assert feed.page.inner_text(f"#ccount-{video}") == "0"
    feed.page.keyboard.press("Escape")
    assert not drawer.is_visible()

    follow = feed.page.locator(f"#card-{video} .follow-button")
    follow.click()
    feed.page.wait_for_function(
        f"() => document.querySelector('#card-{video} .follow-button').getAttribute('aria-pressed') === 'true'")
    creator = feed.page.get_attribute(f"#card-{video}", "data-creator-id")
    assert live_server.wait_for("SELECT 1 FROM events WHERE event_type='follow' AND creator_id=?", creator)
    assert live_server.query("SELECT count(*) FROM follows WHERE creator_id=?", creator) == [(1,)]

    feed.page.click(f"#card-{video} [data-action='save']")
    feed.page.wait_for_function(
        f"() => document.querySelector('#card-{video} [data-action=save]').getAttribute('aria-pressed') === 'true'")
    assert live_server.wait_for("SELECT 1 FROM events WHERE event_type='save' AND video_id=?", video)

    # The saved page and the creator's profile show it.
    feed.page.goto("/saved")
    assert feed.page.locator(f"a.tile[href^='/v/{video}?']").count() == 1
    handle = live_server.query("SELECT username FROM users WHERE id=?", creator)[0][0]
    feed.page.goto(f"/@{handle}")
    assert feed.page.get_attribute(".follow-button", "aria-pressed") == "true"
    assert feed.page.inner_text(f"#followers-{creator}") == "1"
    feed.page.screenshot(path=str(artifacts / "profile-desktop.png"))
    # Unfollow there: the count follows in place (from the answer's foryou:follow event).
    feed.page.click(".follow-profile")
    feed.page.wait_for_function(f"() => document.querySelector('#followers-{creator}').textContent.trim() === '0'")
    feed.page.click(".follow-profile")  # and follow again, for the tests after this one
    feed.page.wait_for_function(f"() => document.querySelector('#followers-{creator}').textContent.trim() === '1'")
    assert feed.errors == []


def test_captions_toggle_and_search(desktop, live_server, artifacts):
    feed = Page(desktop, f"/v/{CAPTIONED}")
    assert feed.active_id() == CAPTIONED
    assert feed.page.get_attribute("meta[property='og:video']", "content").endswith(f"/media/{CAPTIONED}/video.mp4")
    feed.wait_playing(0.1)
    button = feed.page.locator(f"#card-{CAPTIONED} .tool[data-action='captions']")
    button.click()
    assert button.get_attribute("aria-pressed") == "true"
    assert feed.page.evaluate(f"document.querySelector('#card-{CAPTIONED} video').textTracks[0].mode") == "showing"
    feed.page.keyboard.press("m")  # unmute: remembered for the next page
    assert feed.page.evaluate("localStorage.getItem('foryou.muted')") == "false"

    feed.page.goto("/search?q=retro")
    tiles = feed.page.locator(".grid a.tile")
    assert tiles.count() == 2
    feed.page.fill("#search-q", "maya")
    feed.page.wait_for_selector(".creator-row[href='/@maya']")
    feed.page.screenshot(path=str(artifacts / "search-desktop.png"))
    assert feed.errors == []


def test_a_failed_beacon_is_kept_and_retried(desktop, live_server):
    feed = Page(desktop)
    first = feed.active_id()
    request_id = feed.page.get_attribute(f"#card-{first}", "data-request-id")
    feed.wait_playing(0.6)
    feed.page.route("**/api/events", lambda route: route.abort())  # the network goes away
    feed.page.keyboard.press("ArrowDown")
    feed.wait_active_change(first)
    outbox = """JSON.parse(localStorage.getItem('foryou.outbox') || '[]')
        .filter(e => e.type === 'view' && e.info.final).map(e => e.video_id)"""
    feed.page.wait_for_function(f"(id) => ({outbox}).includes(id)", arg=first)  # the failed send kept it
    kept = feed.page.evaluate(outbox)
    assert first in kept  # kept in localStorage, not lost
    final_view = ("SELECT watch_duration FROM events WHERE event_type='view' AND video_id=? "
                  "AND json_extract(additional_info, '$.request_id')=? AND json_extract(additional_info, '$.final')")
    assert live_server.query(final_view, first, request_id) == []

    feed.page.unroute("**/api/events")  # back online: the next flush delivers it
    feed.page.evaluate("window.ForYou.outbox.flush()")
    rows = live_server.wait_for(final_view, first, request_id)
    assert rows and rows[0][0] >= 0.5
    feed.page.wait_for_function("""() => !JSON.parse(localStorage.getItem('foryou.outbox') || '[]')
        .some(e => e.type === 'view' && e.info.final)""", timeout=5000)
    assert feed.errors == []


def test_guest_follow_and_save_open_the_sheet_and_happen_after_logging_in(browser, phone, live_server, artifacts):
    # An account made elsewhere (another browser).
    other = browser.new_context(base_url=live_server.url)
    try:
        page = other.new_page()
        page.goto("/signup")
        page.fill("#signup-form input[name=username]", "phonefan")
        page.fill("#signup-form input[name=password]", "a long enough password")
        page.click("#signup-form button[type=submit]")
        page.wait_for_url(live_server.url + "/")
    finally:
        other.close()

    feed = Page(phone)
    feed.advance()
    video = feed.wait_active_change(None)
    feed.wait_scroll_settled()
    url = feed.page.url
    creator = feed.page.get_attribute(f"#card-{video}", "data-creator-id")
    feed.page.click(f"#card-{video} .follow-button")
    feed.page.wait_for_selector("#auth-sheet:not([hidden]) #login-form")
    # The sheet owns the keyboard: Tab stays inside it.
    for _ in range(6):
        feed.page.keyboard.press("Tab")
        assert feed.page.evaluate("document.getElementById('auth-sheet').contains(document.activeElement)")
    feed.page.fill("#auth-sheet input[name=username]", "phonefan")
    feed.page.fill("#auth-sheet input[name=password]", "wrong password!")
    feed.page.click("#auth-sheet #login-form button[type=submit]")
    feed.page.wait_for_selector("#auth-sheet #login-form .form-error")  # the error, in place
    feed.page.fill("#auth-sheet input[name=password]", "a long enough password")
    feed.page.click("#auth-sheet #login-form button[type=submit]")
    feed.page.wait_for_selector(f"#card-{video} .follow-button[aria-pressed='true']")
    feed.page.wait_for_selector("#auth-sheet", state="hidden")
    assert feed.page.url == url and feed.active_id() == video
    assert live_server.wait_for(
        "SELECT 1 FROM follows f JOIN users u ON u.id = f.follower_id WHERE u.username='phonefan' AND creator_id=?",
        creator)
    assert feed.page.locator("#bottom-nav a[href='/@phonefan']").count() == 1
    # Signed in now: save works at once, with the new session's CSRF token.
    feed.page.click(f"#card-{video} [data-action='save']")
    feed.page.wait_for_selector(f"#card-{video} [data-action='save'][aria-pressed='true']")
    feed.page.screenshot(path=str(artifacts / "auth-sheet-phone-after-follow.png"))
    assert feed.errors == []
