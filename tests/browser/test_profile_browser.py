"""Profiles in a real browser, on a phone (390x844) and a desktop (1280x800): editing name, bio and avatar, the
private Liked tab, follower lists, and an exact re-upload refused with a link. Screenshots in test-artifacts/."""

from __future__ import annotations

import re
from io import BytesIO

import pytest
from PIL import Image

from tests.browser.conftest import CATALOGUE, DESKTOP
from tests.browser.test_phone_ui import sign_up

pytestmark = pytest.mark.browser

PHONE_390 = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2}
SIZES = {"phone": PHONE_390, "desktop": DESKTOP}
LIKED_VIDEO = CATALOGUE[0][0]


@pytest.fixture(params=sorted(SIZES))
def size(request) -> str:  # noqa: ANN001
    return request.param


@pytest.fixture
def context(browser, live_server, size):  # noqa: ANN001, ANN201
    ctx = browser.new_context(base_url=live_server.url, **SIZES[size])
    yield ctx
    ctx.close()


def post_as(page, path: str) -> None:  # noqa: ANN001
    """A state-changing request from this browser's session (its cookie and CSRF token)."""
    csrf = page.evaluate("() => document.querySelector('meta[name=csrf-token]').content")
    response = page.request.post(path, headers={"x-csrf-token": csrf, "hx-request": "true"})
    assert response.status < 400, f"{path}: {response.status}"


def photo(tmp_path, colour=(40, 160, 220)) -> str:
    image = Image.new("RGB", (900, 600), colour)
    for x in range(300, 600):  # a white square in the middle: the crop keeps the centre
        for y in range(200, 400, 4):
            image.putpixel((x, y), (255, 255, 255))
    out = BytesIO()
    image.save(out, "JPEG", quality=90)
    path = tmp_path / "me.jpg"
    path.write_bytes(out.getvalue())
    return str(path)


def test_edit_profile_and_the_avatar_shows_everywhere(context, size, artifacts, tmp_path, live_server):
    page = context.new_page()
    user = f"editor{size}"
    sign_up(page, user)
    page.goto(f"/@{user}")
    page.click("a[href='/profile/edit']")
    page.wait_for_url("**/profile/edit")
    # A file that is not an image: the error shows in place, nothing is saved.
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture " * 30)
    page.fill("#profile-name", "Should Not Stick")
    page.set_input_files("#profile-avatar", str(bad))
    page.click("#profile-save")
    error = page.wait_for_selector("#profile-error")
    assert "not an image" in error.text_content()
    assert page.url.endswith("/profile/edit")
    page.screenshot(path=str(artifacts / f"profile-edit-error-{size}.png"), full_page=True)
    assert live_server.query("SELECT display_name, avatar_path FROM users WHERE username = ?", user) == [(user, None)]

    page.fill("#profile-name", "Edie Tor")
    page.fill("#profile-bio", "I edit things.\nOn phones too.")
    page.set_input_files("#profile-avatar", photo(tmp_path))
    page.click("#profile-save")
    page.wait_for_url(f"**/@{user}")
    assert page.text_content(".profile-head h1") == "Edie Tor"
    assert "I edit things." in page.text_content(".bio")
    img = page.locator(".profile-head .avatar img")
    img.wait_for()
    page.wait_for_function("() => document.querySelector('.profile-head .avatar img').complete")
    assert img.evaluate("el => [el.naturalWidth, el.naturalHeight]") == [256, 256]
    assert img.evaluate("el => el.getBoundingClientRect().width") > 60
    page.screenshot(path=str(artifacts / f"profile-edited-{size}.png"), full_page=True)
    (avatar_path,) = live_server.query("SELECT avatar_path FROM users WHERE username = ?", user)[0]
    assert avatar_path and re.fullmatch(r"media/avatars/u_[0-9a-f]+/[0-9a-f]{16}\.webp", avatar_path)


def test_liked_tab_is_visible_only_to_its_owner(browser, live_server, context, size, artifacts):
    page = context.new_page()
    user = f"liker{size}"
    sign_up(page, user)
    post_as(page, f"/videos/{LIKED_VIDEO}/like")
    page.goto(f"/@{user}")
    tab = page.locator(f".profile-tabs a[href='/@{user}/liked']")
    assert tab.is_visible()
    tab.click()
    page.wait_for_url(f"**/@{user}/liked")
    assert page.locator(f".grid a.tile[href^='/v/{LIKED_VIDEO}']").count() == 1
    assert "Only you can see this tab." in page.text_content("main")
    page.screenshot(path=str(artifacts / f"profile-liked-{size}.png"), full_page=True)

    stranger = browser.new_context(base_url=live_server.url, **SIZES[size])
    try:
        other = stranger.new_page()
        other.goto(f"/@{user}")
        assert other.locator(".profile-tabs").count() == 0
        assert other.locator(f"a[href='/@{user}/liked']").count() == 0
        assert other.goto(f"/@{user}/liked").status == 404
    finally:
        stranger.close()


def test_follower_list_opens_from_the_count(context, size, artifacts):
    page = context.new_page()
    user = f"follower{size}"
    sign_up(page, user)
    creator = CATALOGUE[1][1]
    post_as(page, f"/creators/u_{creator}/follow")
    page.goto(f"/@{creator}")
    page.click(f"a[href='/@{creator}/followers']")
    page.wait_for_url(f"**/@{creator}/followers")
    row = page.locator(".people-list .person", has=page.locator(f"a[href='/@{user}']"))
    assert row.count() == 1
    assert page.locator(".profile-tabs a.active").text_content().startswith("Followers")
    page.screenshot(path=str(artifacts / f"profile-followers-{size}.png"), full_page=True)
    page.click(f"a[href='/@{creator}/following']")
    page.wait_for_url(f"**/@{creator}/following")
    assert "isn't following anyone yet" in page.text_content("main")


def test_exact_reupload_is_refused_with_a_link_to_the_video(context, size, artifacts, clips, live_server):
    page = context.new_page()
    user = f"uploader{size}"
    sign_up(page, user)
    clip = str(clips / CATALOGUE[2][0] / "video.mp4")
    page.goto("/upload")
    page.set_input_files("#upload-file", clip)
    page.fill("#upload-caption", "First time #retro")
    page.click("#upload-submit")
    page.wait_for_function("() => document.getElementById('upload-percent').textContent === 'Uploaded'")
    ((first_id,),) = live_server.query("SELECT v.id FROM videos v JOIN users u ON u.id = v.creator_id "
                                       "WHERE u.username = ?", user)

    page.goto("/upload")
    page.set_input_files("#upload-file", clip)
    page.fill("#upload-caption", "Trying again")
    page.click("#upload-submit")
    error = page.wait_for_selector("#upload-error:not([hidden])")
    assert "already uploaded this exact video" in error.text_content()
    link = page.locator("#upload-error a.existing-video")
    assert link.get_attribute("href") == f"/videos/{first_id}/status"  # still processing: its status page
    assert page.locator("#upload-submit").is_enabled()
    page.screenshot(path=str(artifacts / f"upload-duplicate-{size}.png"), full_page=True)
    assert len(live_server.query("SELECT id FROM videos WHERE creator_id = (SELECT id FROM users WHERE "
                                 "username = ?)", user)) == 1


def test_a_long_unbroken_name_and_bio_fit_a_320px_phone(browser, live_server, artifacts):
    from tests.browser.test_phone_ui import OVERFLOW

    ctx = browser.new_context(base_url=live_server.url, **{**PHONE_390, "viewport": {"width": 320, "height": 700}})
    try:
        page = ctx.new_page()
        sign_up(page, "longname")
        post_as(page, "/creators/u_maya/follow")
        page.goto("/profile/edit")
        page.fill("#profile-name", "W" * 64)
        page.fill("#profile-bio", "x" * 280)
        page.click("#profile-save")
        page.wait_for_url("**/@longname")
        for path in ("/@longname", "/@longname/following", "/@maya/followers", "/@longname/liked", "/profile/edit"):
            page.goto(path)
            assert page.evaluate(OVERFLOW) == [], path
        page.goto("/@longname")
        page.screenshot(path=str(artifacts / "profile-long-name-320.png"), full_page=True)
    finally:
        ctx.close()


def test_profile_tiles_show_their_view_counts(context, size, artifacts, live_server):
    import sqlite3
    from datetime import UTC, datetime

    video, creator = CATALOGUE[3][0], CATALOGUE[3][1]
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    connection = sqlite3.connect(live_server.db_path, timeout=10)
    try:
        for index in range(3):
            connection.execute(
                "INSERT INTO events (event_id, event_type, user_id, video_id, creator_id, timestamp, watch_duration,"
                " additional_info) VALUES (?, 'view', ?, ?, ?, ?, 4.0, '{}')",
                (f"tile-{size}-{index}", f"u_viewer{size}{index}", video, f"u_{creator}", now))
        connection.commit()
    finally:
        connection.close()
    page = context.new_page()
    page.goto(f"/@{creator}")
    views = page.locator(f"a.tile[href^='/v/{video}'] .tile-views")
    assert views.is_visible() and int(views.get_attribute("data-views")) >= 3
    page.screenshot(path=str(artifacts / f"profile-tile-views-{size}.png"), full_page=True)
