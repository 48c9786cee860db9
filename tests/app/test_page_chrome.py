"""What every page carries: no inline script handlers, a favicon, notices after redirects, htmx error fragments."""

from __future__ import annotations

import re

from app.server.templating import TEMPLATES_DIR
from tests.app.helpers import add_video

HTML = {"accept": "text/html"}
# on*= attributes and javascript: URLs are inline script, which the app's CSP (script-src 'self') blocks.
INLINE_HANDLER = re.compile(r"""\son[a-z]+\s*=\s*["']|javascript:""", re.IGNORECASE)


def test_no_template_has_an_inline_script_handler():
    templates = sorted(TEMPLATES_DIR.rglob("*.html"))
    assert len(templates) > 20
    offenders = [f"{path.relative_to(TEMPLATES_DIR)}: {match.group(0).strip()}"
                 for path in templates for match in INLINE_HANDLER.finditer(path.read_text())]
    assert offenders == []
    assert not any("<script>" in path.read_text() or "<script >" in path.read_text() for path in templates)


def test_the_scan_catches_an_inline_handler():
    assert INLINE_HANDLER.search("""<button class="x" onclick="return confirm('Sure?')">""")
    assert INLINE_HANDLER.search("""<a href="javascript:void(0)">""")
    assert not INLINE_HANDLER.search("""<button data-confirm="Sure?" hx-on-click>""")


def test_admin_confirmations_use_data_confirm():
    sources = "".join((TEMPLATES_DIR / "admin" / name).read_text()
                      for name in ("moderation.html", "dashboard.html", "experiments.html"))
    assert sources.count("data-confirm=") >= 3


def test_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"  # the ICO header
    assert '<link rel="icon" href="/favicon.ico"' in client.get("/", headers=HTML).text


def test_account_deleted_notice_shows_after_the_redirect(client):
    page = client.get("/?msg=account-deleted", headers=HTML).text
    assert 'role="status" aria-live="polite">Your account and everything in it has been deleted.</div>' in page
    assert 'aria-live="polite"></div>' in client.get("/?msg=whatever", headers=HTML).text  # unknown keys: nothing


def test_an_htmx_error_is_an_html_fragment_for_the_toast(client):
    add_video(client)
    response = client.get("/videos/nope/comments", headers={"hx-request": "true"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["hx-retarget"] == "#toast"
    assert response.text.startswith('<span class="error-fragment" role="alert">')
    assert "<html" not in response.text
    assert client.get("/videos/nope/comments").headers["content-type"].startswith("application/json")


def test_bottom_navigation_and_side_rail_on_every_page(client):
    page = client.get("/search", headers=HTML).text
    assert 'class="bottom-nav"' in page and 'class="side-rail"' in page
    assert re.search(r'<a href="/search" class="active" aria-current="page">', page)


def test_the_navigation_fits_each_page_and_visitor(client):
    """A signed-out visitor's navigation is rendered once per page entry and path (the fragment cache): each path
    still gets its own login link and active entry, and signing in shows the account, not the cached links."""
    from tests.app.test_accounts import signup

    for path, active in (("/search", '<a href="/search" class="active" aria-current="page">'),
                         ("/?tab=following", '<a href="/?tab=following" class="side-item active">'),
                         ("/", '<a href="/" class="side-item active">')):
        for _ in range(2):  # the second view comes from the cache
            page = client.get(path, headers=HTML).text
            assert active in page, path
            assert page.count(f'href="/login?next={path.split("?")[0]}"') == 2, path
    assert 'href="/login?next=/search"' not in client.get("/", headers=HTML).text
    signup(client, "navuser")
    page = client.get("/search", headers=HTML).text
    assert 'href="/@navuser"' in page and "Log out" in page and "side-login" not in page
    client.cookies.clear()
    signup(client, "navother")  # a signed-in navigation is never shared
    page = client.get("/search", headers=HTML).text
    assert 'href="/@navother"' in page and 'href="/@navuser"' not in page
