"""Phone and desktop layout, in-place errors, confirmations, captions, the first-visit dialog and the comments
drawer, in a real browser against one live server for the module. Screenshots land in test-artifacts/."""

from __future__ import annotations

import pytest

from tests.browser.conftest import CAPTIONED, DESKTOP, PHONE

pytestmark = pytest.mark.browser

PHONE_WIDTHS = (320, 360, 390, 430)
ACTIVE = "#feed .card.is-active"
# Everything drawn wider than the viewport, by selector, so a failure names the culprit.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [];
  if (document.documentElement.scrollWidth > width) wide.push('document ' + document.documentElement.scrollWidth);
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (!box.width || getComputedStyle(el).visibility === 'hidden') continue;
    if (el.closest('.sr-only, .visually-hidden, .skip-link, [hidden]')) continue;
    if (box.right > width + 1 || box.left < -1) {
      wide.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + '.' + el.className + ' ' +
                Math.round(box.left) + '..' + Math.round(box.right));
    }
  }
  return wide.slice(0, 8);
}"""


def phone_at(browser, live_server, width: int, **extra):  # noqa: ANN001, ANN201
    options = {**PHONE, "viewport": {"width": width, "height": 780}}
    return browser.new_context(base_url=live_server.url, **options, **extra)


def console_errors(page) -> list[str]:  # noqa: ANN001
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # A 4xx answer to a form is expected; Chromium's network line for it is not a script error.
    page.on("console", lambda msg: msg.type == "error" and "Failed to load resource" not in msg.text
            and errors.append(msg.text))
    return errors


def skip_onboarding(page) -> None:  # noqa: ANN001
    skip = page.locator("#onboarding button[name=skip]")
    if skip.count():
        skip.click()
        page.wait_for_selector("#onboarding", state="detached")


def sign_up(page, username: str) -> None:  # noqa: ANN001
    page.goto("/signup")
    page.fill("#signup-form input[name=username]", username)
    page.fill("#signup-form input[name=password]", "a long enough password")
    page.click("#signup-form button[type=submit]")
    page.wait_for_url(lambda url: "/signup" not in url)


@pytest.fixture(scope="module")
def member_state(browser, live_server, tmp_path_factory) -> str:  # noqa: ANN001
    """A signed-in browser state (cookies), made once and reused by the signed-in layout checks."""
    context = browser.new_context(base_url=live_server.url, **DESKTOP)
    page = context.new_page()
    sign_up(page, "phoneuser")
    path = tmp_path_factory.mktemp("state") / "member.json"
    context.storage_state(path=str(path))
    context.close()
    return str(path)


@pytest.mark.parametrize("signed_in", [False, True], ids=["guest", "member"])
def test_nothing_is_wider_than_a_phone(browser, live_server, artifacts, member_state, signed_in):
    if signed_in:
        pages = ["/", "/@phoneuser", "/search?q=retro", "/upload", "/settings",
                 # the profile's own pages: edit, the private Liked tab, the lists, the studio's counts
                 "/profile/edit", "/@phoneuser/liked", "/@phoneuser/followers", "/@phoneuser/following", "/studio"]
    else:
        pages = ["/", "/?tab=following", "/@maya", "/tag/retro", "/login", "/@maya/followers", "/@maya/following"]
    for width in PHONE_WIDTHS:
        context = phone_at(browser, live_server, width, **({"storage_state": member_state} if signed_in else {}))
        page = context.new_page()
        errors = console_errors(page)
        for path in pages:
            page.goto(path)
            skip_onboarding(page)
            page.wait_for_timeout(50)
            wide = page.evaluate(OVERFLOW)
            assert wide == [], f"{path} at {width}px ({'member' if signed_in else 'guest'}): {wide}"
            nav = page.locator("nav.bottom-nav")
            assert nav.is_visible(), f"no bottom navigation on {path}"
            box = nav.bounding_box()
            assert box["y"] + box["height"] <= 780 + 1 and box["width"] <= width
            if width == 390 and path in ("/", "/@phoneuser", "/search?q=retro"):
                name = path.strip("/").replace("?", "-").replace("=", "-").replace("@", "at-") or "feed"
                page.screenshot(path=str(artifacts / f"phone-390-{'member' if signed_in else 'guest'}-{name}.png"))
        assert errors == []
        context.close()


def test_phone_feed_has_only_the_two_tabs_on_top_and_the_bottom_bar(browser, live_server):
    context = phone_at(browser, live_server, 390)
    page = context.new_page()
    sign_up(page, "thumbs")  # lands on the feed (a reload would say "caught up": 5 videos in the catalogue)
    skip_onboarding(page)
    page.wait_for_selector(ACTIVE)
    top = page.locator("header.topbar")
    assert [t.strip() for t in top.locator(".feed-tabs a").all_inner_texts()] == ["Following", "For You"]
    assert top.locator("a:visible").count() == 3  # the two tabs and search: no account links up there
    labels = [t.strip() for t in page.locator("nav.bottom-nav a").all_inner_texts()]
    assert labels == ["Home", "Discover", "", "Profile"]
    assert page.locator("nav.side-rail").is_hidden()
    # The video ends above the bottom bar, the bar does not cover the caption.
    stage = page.locator(f"{ACTIVE} .stage").bounding_box()
    bar = page.locator("nav.bottom-nav").bounding_box()
    assert stage["y"] + stage["height"] <= bar["y"] + 1
    # Account links are one tap away on your own profile.
    page.locator("nav.bottom-nav a[aria-label='Your profile']").click()
    page.wait_for_url("**/@thumbs")
    assert page.get_by_role("button", name="Log out").is_visible()
    assert page.get_by_role("link", name="Settings").is_visible()
    context.close()


def test_desktop_left_rail_and_comments_beside_the_video(browser, live_server, artifacts):
    context = browser.new_context(base_url=live_server.url, **DESKTOP)
    page = context.new_page()
    errors = console_errors(page)
    page.goto("/")
    skip_onboarding(page)
    page.wait_for_selector(ACTIVE)
    rail = page.locator("nav.side-rail")
    assert rail.is_visible() and page.locator("nav.bottom-nav").is_hidden()
    assert [t.strip() for t in rail.locator(".side-item").all_inner_texts()] == [
        "For You", "Following", "Explore", "Upload"]
    page.screenshot(path=str(artifacts / "desktop-feed-rail.png"))
    page.click(f"{ACTIVE} [data-action='comments']")
    page.wait_for_selector("#comments-drawer.open")
    page.wait_for_timeout(350)  # the slide-in
    drawer = page.locator("#comments-drawer").bounding_box()
    stage = page.locator(f"{ACTIVE} .stage").bounding_box()
    assert stage["x"] + stage["width"] <= drawer["x"], "the comments panel covers the video"
    assert stage["x"] >= rail.bounding_box()["width"]
    page.screenshot(path=str(artifacts / "desktop-comments-beside.png"))
    # Focus stays in the drawer: Tab and Shift+Tab go round its controls.
    for key in ["Tab"] * 6 + ["Shift+Tab"] * 6:
        page.keyboard.press(key)
        assert page.evaluate("document.getElementById('comments-drawer').contains(document.activeElement)"), key
    page.keyboard.press("Escape")
    assert page.locator("#comments-drawer").is_hidden()
    assert errors == []
    context.close()


def test_failed_login_and_taken_username_show_their_error_in_place(browser, live_server, artifacts):
    context = phone_at(browser, live_server, 390)
    page = context.new_page()
    errors = console_errors(page)
    page.goto("/login")
    page.fill("#login-form input[name=username]", "nobody")
    page.fill("#login-form input[name=password]", "wrong password")
    page.click("#login-form button[type=submit]")
    alert = page.locator("#login-form .form-error")
    alert.wait_for()
    assert alert.inner_text() == "Wrong username or password."
    assert page.url.endswith("/login")
    assert page.input_value("#login-form input[name=username]") == "nobody"  # nothing typed is lost
    page.screenshot(path=str(artifacts / "phone-login-error.png"))

    page.goto("/signup")
    page.fill("#signup-form input[name=username]", "maya")  # a catalogue creator
    page.fill("#signup-form input[name=password]", "a long enough password")
    page.click("#signup-form button[type=submit]")
    page.locator("#signup-form .form-error").wait_for()
    assert "taken" in page.inner_text("#signup-form .form-error").lower()
    assert errors == []
    context.close()


def test_data_confirm_asks_first_and_no_is_no(browser, live_server):
    context = browser.new_context(base_url=live_server.url, **DESKTOP)
    page = context.new_page()
    page.goto("/search")
    # A real form posting to a real endpoint, guarded by data-confirm (as the admin buttons are).
    page.evaluate("""() => {
        const f = document.createElement('form'); f.method = 'post'; f.action = '/logout'; f.id = 'confirm-form';
        f.innerHTML = '<input type=hidden name=csrf_token value="' + window.ForYou.csrf() + '">' +
                      '<button id="confirm-button" data-confirm="Really?">Go</button>';
        document.querySelector('.search-form').after(f);
    }""")
    asked: list[str] = []

    def dismiss(dialog) -> None:  # noqa: ANN001
        asked.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.click("#confirm-button")
    page.wait_for_timeout(300)
    assert asked == ["Really?"] and page.url.endswith("/search")  # dismissed: nothing was posted
    page.remove_listener("dialog", dismiss)
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.click("#confirm-button")
    assert not page.url.endswith("/search")
    context.close()


def test_captions_sit_above_the_caption_block_and_the_choice_is_remembered(browser, live_server, artifacts):
    context = phone_at(browser, live_server, 390)
    page = context.new_page()
    page.goto(f"/v/{CAPTIONED}")
    page.wait_for_selector(ACTIVE)
    page.click(f"{ACTIVE} .tool[data-action='captions']")
    page.wait_for_function(f"""() => {{ const t = document.querySelector('#card-{CAPTIONED} video').textTracks[0];
        return t.mode === 'showing' && t.cues && t.cues.length > 0; }}""")
    placed = page.evaluate(f"""() => {{
        const card = document.getElementById('card-{CAPTIONED}');
        const video = card.querySelector('video').getBoundingClientRect();
        const meta = card.querySelector('.meta').getBoundingClientRect();
        const cues = Array.from(card.querySelector('video').textTracks[0].cues);
        return {{ lines: cues.map(c => c.line), snap: cues.map(c => c.snapToLines),
                  metaTop: (meta.top - video.top) / video.height * 100 }}; }}""")
    assert placed["snap"] == [False, False]
    assert all(line < placed["metaTop"] for line in placed["lines"]), placed
    page.wait_for_timeout(600)
    page.screenshot(path=str(artifacts / "phone-captions-above-caption.png"))
    page.reload()
    page.wait_for_selector(ACTIVE)
    assert page.get_attribute(f"{ACTIVE} .tool[data-action='captions']", "aria-pressed") == "true"
    assert page.evaluate(f"document.querySelector('#card-{CAPTIONED} video').textTracks[0].mode") == "showing"
    context.close()


def test_first_visit_dialog_pauses_the_video_and_logs_nothing_until_dismissed(browser, live_server):
    context = phone_at(browser, live_server, 390)
    page = context.new_page()
    watched = "SELECT count(*) FROM events WHERE event_type IN ('view', 'skip', 'complete_view')"
    before = live_server.query(watched)
    page.goto("/")
    page.wait_for_selector("#onboarding")
    page.wait_for_timeout(1500)
    state = page.evaluate("""() => Array.from(document.querySelectorAll('video.player'))
        .map(v => ({ paused: v.paused, t: v.currentTime }))""")
    assert all(v["paused"] and v["t"] == 0 for v in state), state
    page.evaluate("window.ForYou.outbox.flush()")
    page.wait_for_timeout(300)
    assert page.evaluate("Array.from(window.ForYou.outbox.items.values()).length") == 0
    assert live_server.query(watched) == before
    page.click("#onboarding button[name=skip]")
    page.wait_for_selector("#onboarding", state="detached")
    page.wait_for_function("""() => { const v = document.querySelector('#feed .card.is-active video.player');
                                      return v && !v.paused && v.currentTime > 0.2; }""")
    context.close()


def test_a_hashtag_grid_opens_as_a_swipeable_feed_of_that_grid(browser, live_server, artifacts):
    context = phone_at(browser, live_server, 390)
    page = context.new_page()
    errors = console_errors(page)
    page.goto("/tag/retro")
    tiles = page.locator(".grid a.tile")
    order = [href.split("/v/")[1].split("?")[0] for href in
             (tiles.nth(i).get_attribute("href") for i in range(tiles.count()))]
    assert len(order) == 2
    tiles.first.click()
    page.wait_for_url(f"**/v/{order[0]}?from=tag%3Aretro")
    skip_onboarding(page)
    page.wait_for_selector(ACTIVE)
    assert page.get_attribute(ACTIVE, "data-video-id") == order[0]
    assert page.get_attribute(ACTIVE, "data-feed") == "hashtag"
    page.keyboard.press("ArrowDown")
    page.wait_for_function(f"() => document.querySelector('{ACTIVE}')?.dataset.videoId === '{order[1]}'")
    page.wait_for_timeout(500)
    page.keyboard.press("ArrowDown")
    page.wait_for_selector("[data-end='grid'].is-active")
    page.wait_for_timeout(400)
    page.screenshot(path=str(artifacts / "phone-grid-end.png"))
    assert page.get_by_role("link", name="Back to #retro").is_visible()
    impression = ("SELECT json_extract(additional_info, '$.source') FROM events"
                  " WHERE event_type='impression' AND video_id=?")
    assert ("hashtag",) in live_server.query(impression, order[1])
    assert errors == []
    context.close()


def test_progress_bar_seeks_and_desktop_has_a_volume_control(browser, live_server, artifacts):
    context = browser.new_context(base_url=live_server.url, **DESKTOP)
    page = context.new_page()
    errors = console_errors(page)
    page.goto(f"/v/{CAPTIONED}")
    skip_onboarding(page)
    page.wait_for_selector(ACTIVE)
    page.wait_for_function(f"() => document.querySelector('{ACTIVE} video').readyState >= 1")
    bar = page.locator(f"{ACTIVE} .progress").bounding_box()
    page.mouse.click(bar["x"] + bar["width"] * 0.75, bar["y"] + bar["height"] / 2)
    position = page.evaluate(f"document.querySelector('{ACTIVE} video').currentTime")
    assert 4.0 <= position <= 5.2, position  # 75% of a 6 s clip
    assert page.evaluate(f"document.querySelector('{ACTIVE} video').paused") is False  # a seek is not a pause
    volume = page.locator(f"{ACTIVE} input.volume")
    assert volume.is_visible()
    volume.fill("0.4")
    assert page.evaluate(f"document.querySelector('{ACTIVE} video').volume") == pytest.approx(0.4)
    assert page.evaluate(f"document.querySelector('{ACTIVE} video').muted") is False  # turning it up unmutes
    assert page.evaluate("localStorage.getItem('foryou.volume')") == "0.4"
    page.screenshot(path=str(artifacts / "desktop-seek-volume.png"))
    assert errors == []
    context.close()
    phone = phone_at(browser, live_server, 390)
    page = phone.new_page()
    page.goto(f"/v/{CAPTIONED}")
    skip_onboarding(page)
    page.wait_for_selector(ACTIVE)
    assert page.locator(f"{ACTIVE} input.volume").is_hidden()  # phones use their own volume buttons
    assert page.get_attribute(f"{ACTIVE} .progress", "role") == "slider"
    phone.close()
