"""No console errors anywhere: every page, as a guest and signed in, at phone and desktop sizes.

Each page is opened in Chromium with listeners for console errors, uncaught exceptions and every htmx error
event (``htmx:*Error``, ``htmx:oobErrorNoTarget`` among them); on the feed, the video page and a profile it
also follows, likes and opens the comments. A screenshot of each page goes to test-artifacts/sweep-*.png.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from tests.browser.conftest import DESKTOP, PHONE

pytestmark = pytest.mark.browser

VIDEO = "v_sunset01"
SOUND = "s_sweep00001"
PAGES = [
    ("feed", "/"), ("following", "/?tab=following"), ("video", f"/v/{VIDEO}"), ("profile", "/@maya"),
    ("followers", "/@maya/followers"), ("tag", "/tag/retro"), ("search", "/search?q=retro"), ("saved", "/saved"),
    ("sound", f"/sound/{SOUND}"), ("upload", "/upload"), ("studio", "/studio"), ("analytics", "/studio/analytics"),
    ("settings", "/settings"), ("tokens", "/settings/tokens"), ("admin", "/admin"), ("admin-inspect", "/admin/inspect"),
    ("admin-experiments", "/admin/experiments"), ("admin-moderation", "/admin/moderation"), ("login", "/login"),
    ("signup", "/signup"), ("not-found", "/no-such-page-at-all"),
]
# Every htmx event whose name says it is an error (htmx 2.x), reported to the test through the console.
HTMX_ERRORS = ["htmx:responseError", "htmx:sendError", "htmx:swapError", "htmx:targetError", "htmx:oobErrorNoTarget",
               "htmx:onLoadError", "htmx:historyCacheError", "htmx:sseError", "htmx:timeout", "htmx:syntax:error",
               "htmx:evalDisallowedError", "htmx:invalidPath"]
LISTEN = """(() => {
  for (const name of NAMES) {
    document.addEventListener(name, (e) => {
      const d = e.detail || {};
      console.error("HTMX-ERROR " + name + " " + ((d.requestConfig && d.requestConfig.path) || d.path || "") +
                    " " + ((d.xhr && d.xhr.status) || "") + " " + ((d.content && d.content.id) || ""));
    }, true);
  }
})();""".replace("NAMES", json.dumps(HTMX_ERRORS))


def _seed_sound(live_server) -> None:  # noqa: ANN001
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    import sqlite3

    db = sqlite3.connect(live_server.db_path, timeout=10)
    try:
        db.execute("INSERT OR IGNORE INTO sounds (id, title, creator_id, original_video_id, seconds, landmarks,"
                   " created_at) VALUES (?,?,?,?,?,?,?)", (SOUND, "Sweep tune", "u_maya", VIDEO, 6.0, 0, now))
        db.execute("INSERT OR IGNORE INTO video_sounds (video_id, sound_id, how) VALUES (?,?,?)",
                   (VIDEO, SOUND, "original"))
        db.commit()
    finally:
        db.close()


class Sweep:
    def __init__(self, context, artifacts, label: str) -> None:  # noqa: ANN001
        self.context, self.artifacts, self.label = context, artifacts, label
        self.problems: list[str] = []
        context.add_init_script(LISTEN)
        self.page = context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.problems.append(f"{self.where}: uncaught {exc}"))
        self.where = ""
        self.expect_404: str | None = None

    def _console(self, message) -> None:  # noqa: ANN001
        if message.type != "error":
            return
        # The one expected message: Chromium reports the status of the 404 page itself (the page we asked for).
        if self.expect_404 and message.text.startswith("Failed to load resource") and "404" in message.text and \
                message.location.get("url", "").endswith(self.expect_404):
            return
        self.problems.append(f"{self.where}: {message.text}")

    def visit(self, name: str, path: str) -> None:
        self.where = f"{self.label} {path}"
        self.expect_404 = path if name == "not-found" else None
        self.page.goto(path)
        self.page.wait_for_load_state("load")
        skip = self.page.locator("#onboarding button[name=skip]")
        if skip.count():
            skip.click()
            self.page.wait_for_selector("#onboarding", state="detached")
        self.page.wait_for_timeout(250)
        self.page.screenshot(path=str(self.artifacts / f"sweep-{self.label}-{name}.png"))

    def act(self, name: str, signed_in: bool) -> None:
        """Follow, like and open the comments on the page's first card (feed and video page), or follow on a
        profile; a guest's follow opens the sign-in sheet, which is then closed."""
        page = self.page
        if page.locator("#feed").count():
            page.wait_for_selector("#feed .card.is-active")
            if page.locator("#feed .card.is-active[data-end]").count():  # caught up: start over (another path)
                page.click("#feed .card.is-active[data-end] button:has-text('Start over')")
            page.wait_for_selector("#feed .card.is-active[data-video-id]")
        card = page.locator("#feed .card.is-active[data-video-id]")
        selector = "#feed .card.is-active .follow-button, .follow-profile"
        follow = page.locator(selector).first
        if follow.count() and follow.is_visible() and follow.get_attribute("aria-pressed") == "false":
            follow.click()
            if signed_in:  # the button is swapped for the server's answer
                page.wait_for_selector(", ".join(f"{s}[aria-pressed='true']" for s in selector.split(", ")))
            else:
                page.wait_for_selector("#auth-sheet:not([hidden]) #login-form")
                page.wait_for_timeout(250)  # the panel slides up
                page.screenshot(path=str(self.artifacts / f"sweep-{self.label}-{name}-sheet.png"))
                page.keyboard.press("Escape")
                page.wait_for_selector("#auth-sheet", state="hidden")
        if card.count() and page.locator("#feed").count():
            vid = card.get_attribute("data-video-id")
            like = f"#card-{vid} [data-action='like']"
            # The video page's card may be one the feed's sweep liked already: the click then unlikes it.
            toggled = "false" if page.get_attribute(like, "aria-pressed") == "true" else "true"
            page.click(like)
            page.wait_for_selector(f"{like}[aria-pressed='{toggled}']")
            page.click(f"#card-{vid} [data-action='comments']")
            page.wait_for_selector("#comments-drawer .comment-form")
            page.wait_for_timeout(250)
            page.screenshot(path=str(self.artifacts / f"sweep-{self.label}-{name}-comments.png"))
            page.keyboard.press("Escape")
        page.wait_for_timeout(300)


def _sign_up(sweep: Sweep, live_server, username: str) -> None:  # noqa: ANN001
    page = sweep.page
    page.goto("/signup")
    page.fill("#signup-form input[name=username]", username)
    page.fill("#signup-form input[name=password]", "a long enough password")
    page.click("#signup-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/$"))
    live_server.query("SELECT 1")  # the row exists now
    import sqlite3

    db = sqlite3.connect(live_server.db_path, timeout=10)
    try:
        db.execute("UPDATE users SET role='admin' WHERE username=?", (username,))  # so the admin pages render
        db.commit()
    finally:
        db.close()


@pytest.mark.parametrize("size", ["phone", "desktop"])
@pytest.mark.parametrize("who", ["guest", "signed-in"])
def test_no_console_or_htmx_errors_on_any_page(browser, live_server, artifacts, who, size):  # noqa: ANN001
    _seed_sound(live_server)
    options = PHONE if size == "phone" else DESKTOP
    context = browser.new_context(base_url=live_server.url, **options)
    try:
        sweep = Sweep(context, artifacts, f"{who}-{size}")
        signed_in = who == "signed-in"
        if signed_in:
            _sign_up(sweep, live_server, f"sweeper_{size}")
        for name, path in PAGES:
            sweep.visit(name, path)
            if name in ("feed", "video", "profile", "followers"):
                sweep.act(name, signed_in)
            if name == "feed":  # the listeners work: an htmx error event is caught (then forgotten)
                sweep.page.evaluate("document.body.dispatchEvent(new CustomEvent('htmx:oobErrorNoTarget',"
                                    " {bubbles: true, detail: {}}))")
                caught = [p for p in sweep.problems if "HTMX-ERROR htmx:oobErrorNoTarget" in p]
                assert caught, sweep.problems
                sweep.problems = [p for p in sweep.problems if p not in caught]
        assert sweep.problems == []
    finally:
        context.close()
