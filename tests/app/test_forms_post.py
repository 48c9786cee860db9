"""Every form the pages render can be submitted (issue 12: "a test per route that POSTs every form the pages
render"). For each kind of visitor (guest, signed-in viewer, creator with videos, admin) the site is crawled from
its entry pages by following its own links and hx-get fragments; every <form> and every hx-post / hx-put /
hx-patch / hx-delete element found is parsed with the standard library's HTML parser and submitted with its own
fields (hidden CSRF field, or the X-CSRF-Token header from hx-headers as htmx sends it), text fields filled
in, one option of each select. No answer may be a 5xx, and a rendered action may never be a 404 or 405.
Destructive actions (log out, delete) go last, and the crawl runs twice, so forms that only appear after
others were sent (an unlike button, a reply to a comment) are submitted too."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin, urlsplit

import pytest
from sqlalchemy import select

from app.db.admin_models import ModerationFlag
from app.db.models import Comment, Report, User, Video
from tests.app.helpers import run, services
from tests.app.test_accounts import login, signup
from tests.conftest import csrf_of, make_settings

HX_METHODS = ("hx-post", "hx-put", "hx-patch", "hx-delete")
SKIP_PREFIXES = ("/static/", "/media/", "/avatars/", "/api/", "/favicon", "/docs", "/schema")
MAX_PAGES = 80
PASSWORD = "correct horse"


@dataclass
class Submission:
    method: str
    action: str
    fields: list[tuple[str, str]]
    files: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    found_on: str = ""
    tag: str = ""

    def key(self) -> tuple:
        return self.method, re.sub(r"\d+", "N", self.action), tuple(sorted({name for name, _ in self.fields}))

    @property
    def destructive(self) -> int:
        text = f"{self.action} {self.tag}".lower()
        if "delete" in text and ("account" in text or self.action.rstrip("/").endswith("/settings/delete")):
            return 3
        signs = ("logout", "/login", "/signup", "delete", "remove")
        if any(word in text for word in signs) or self.method == "DELETE":
            return 2
        return 1


class Page(HTMLParser):
    """Forms (with their fields), hx-* action elements, links and hx-get fragments of one HTML page."""

    def __init__(self, url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.url = url
        self.links: list[str] = []
        self.submissions: list[Submission] = []
        self.body_headers: dict[str, str] = {}
        self._forms: list[dict] = []  # open <form> stack
        self._select: dict | None = None
        self._textarea: dict | None = None
        self._hx_pending: list[tuple[dict, dict | None]] = []  # hx elements, with the form they sit in

    # ---- parsing --------------------------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        form = self._forms[-1] if self._forms else None
        if tag == "body" and a.get("hx-headers"):
            self.body_headers = json.loads(a["hx-headers"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if a.get("hx-get"):
            self.links.append(a["hx-get"])
        if tag == "form":
            self._forms.append({"attrs": a, "fields": [], "files": [], "radios": set(), "hx": None})
            form = self._forms[-1]
        if any(a.get(m) for m in HX_METHODS):
            entry = {"tag": tag, "attrs": a, "fields": []}
            if tag == "form":
                form["hx"] = entry
            else:
                self._hx_pending.append((entry, form))
                if a.get("name"):
                    entry["fields"].append((a["name"], a.get("value", "")))
        if tag == "input" and form is not None:
            self._input(form, a)
        elif tag == "select" and form is not None:
            self._select = {"form": form, "name": a.get("name", ""), "options": [], "selected": None}
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            self._select["options"].append(value)
            if "selected" in a:
                self._select["selected"] = value
        elif tag == "textarea" and form is not None:
            self._textarea = {"form": form, "name": a.get("name", ""), "text": ""}

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None:
            s = self._select
            if s["name"]:
                choice = s["selected"] if s["selected"] is not None else next((o for o in s["options"] if o), "")
                s["form"]["fields"].append((s["name"], choice))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            t = self._textarea
            if t["name"]:
                t["form"]["fields"].append((t["name"], t["text"].strip() or "a friendly note #bread @maker"))
            self._textarea = None
        elif tag == "form" and self._forms:
            self._close_form(self._forms.pop())

    @staticmethod
    def _input(form: dict, a: dict) -> None:
        kind, name, value = a.get("type", "text").lower(), a.get("name", ""), a.get("value", "")
        if not name or kind in ("submit", "button", "reset", "image") or "disabled" in a:
            if kind == "submit" and name:
                form.setdefault("submit", (name, value))
            return
        if kind == "file":
            form["files"].append(name)
        elif kind == "checkbox":
            form["fields"].append((name, value or "on"))
        elif kind == "radio":
            if name not in form["radios"] and (value or "checked" in a):
                form["radios"].add(name)
                form["fields"].append((name, value))
        elif kind == "hidden":
            form["fields"].append((name, value))
        else:
            form["fields"].append((name, value or _filler(kind, name, a)))

    def _close_form(self, form: dict) -> None:
        a = form["attrs"]
        fields = list(form["fields"])
        if form.get("submit"):
            fields.append(form["submit"])
        hx = form["hx"]
        if hx is not None:
            method = next(m for m in HX_METHODS if hx["attrs"].get(m))
            self._add(method.removeprefix("hx-").upper(), hx["attrs"][method], fields, form["files"], "form", True,
                      hx["attrs"])
        elif a.get("action") is not None or a.get("method"):
            method = (a.get("method") or "get").upper()
            if method == "POST":
                self._add("POST", a.get("action") or self.url, fields, form["files"], "form", False, a)
            # GET forms (search) are pages: crawl them with their fields
            elif method == "GET":
                query = "&".join(f"{k}={v or 'bread'}" for k, v in fields if k)
                self.links.append(f"{a.get('action') or self.url}?{query}")
        for entry, _owner in [p for p in self._hx_pending if p[1] is form]:
            self._hx(entry, fields + entry["fields"])
        self._hx_pending = [p for p in self._hx_pending if p[1] is not form]

    def close(self) -> None:
        super().close()
        for entry, _owner in self._hx_pending:
            self._hx(entry, entry["fields"])

    def _hx(self, entry: dict, fields: list[tuple[str, str]]) -> None:
        attrs = entry["attrs"]
        method = next(m for m in HX_METHODS if attrs.get(m))
        values = json.loads(attrs["hx-vals"]) if attrs.get("hx-vals", "").startswith("{") else {}
        self._add(method.removeprefix("hx-").upper(), attrs[method],
                  fields + [(k, str(v)) for k, v in values.items()], [], entry["tag"], True, attrs)

    def _add(self, method: str, action: str, fields: list, files: list, tag: str, htmx: bool, attrs: dict) -> None:
        headers = dict(self.body_headers) if htmx else {}
        if htmx:
            headers["HX-Request"] = "true"
        if attrs.get("hx-headers", "").startswith("{"):
            headers.update(json.loads(attrs["hx-headers"]))
        label = " ".join(str(attrs.get(k, "")) for k in ("class", "aria-label", "id", "hx-confirm"))
        self.submissions.append(Submission(method, urljoin(self.url, action), fields, files, headers, self.url,
                                           f"{tag} {label}"))


def _filler(kind: str, name: str, attrs: dict) -> str:
    if kind == "password" or "password" in name:
        return PASSWORD
    if kind == "number" or kind == "range":
        return attrs.get("min") or "1"
    if kind == "email":
        return "someone@example.org"
    if kind == "url":
        return "https://example.org/"
    if kind == "color":
        return "#336699"
    if kind in ("date", "datetime-local"):
        return "2026-01-01" if kind == "date" else "2026-01-01T10:00"
    if name in ("username", "handle"):
        return "newcomer"
    if name in ("q", "query", "search"):
        return "bread"
    return "bread #baking"


# ---- the crawl -------------------------------------------------------------------------------------------
def _local(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("", "http", "https") or (parts.netloc and parts.netloc != "testserver.local"):
        return None
    path = parts.path or "/"
    if path.startswith(SKIP_PREFIXES) or path == "/logout":
        return None
    return path + (f"?{parts.query}" if parts.query else "")


def crawl(client, seeds: list[str], limit: int = MAX_PAGES) -> tuple[list[Submission], list[str]]:  # noqa: ANN001
    """Every submission found on the pages reachable from ``seeds``, and the pages that answered 5xx."""
    queue, seen, found, broken = list(seeds), set(), [], []
    pages = 0
    while queue and pages < limit:
        url = queue.pop(0)
        shape = re.sub(r"\d{2,}|v_\w+", "N", url)
        if url in seen or shape in seen:
            continue
        seen.update({url, shape})
        pages += 1
        headers = {"accept": "text/html"}
        if url.startswith(("/feed/cards", "/videos/")) or "fragment" in url:
            headers["hx-request"] = "true"
        answer = client.get(url, headers=headers)
        if answer.status_code >= 500:
            broken.append(f"GET {url} -> {answer.status_code}")
            continue
        if "html" not in answer.headers.get("content-type", ""):
            continue
        page = Page("http://testserver.local" + url)
        page.feed(answer.text)
        page.close()
        found.extend(page.submissions)
        for link in page.links:
            local = _local(urljoin(page.url, link))
            if local and local not in seen:
                queue.append(local)
    return found, broken


def submit(client, item: Submission) -> list:  # noqa: ANN001
    """The answers to sending the form as a browser would: a form with file inputs twice, once with no file
    chosen (an empty part with an empty file name) and once with a file that is not what it asks for."""
    path = _local(item.action) or urlsplit(item.action).path
    if item.files:
        return [client.request(item.method, path, data=dict(item.fields), headers=item.headers,
                               files={name: (filename, body, kind) for name in item.files})
                for filename, body, kind in (("", b"", "application/octet-stream"),
                                             ("note.txt", b"this is not a picture or a video", "text/plain"))]
    if item.method in ("GET", "DELETE") and not item.fields:
        return [client.request(item.method, path, headers=item.headers)]
    return [client.request(item.method, path, content=urlencode(item.fields),
                           headers={**item.headers, "content-type": "application/x-www-form-urlencoded"})]


# ---- the visitors ----------------------------------------------------------------------------------------
def _user_id(client, username: str) -> str:
    async def _find() -> str:
        async with services(client).db.read() as session:
            return (await session.execute(select(User.id).where(User.username == username))).scalar_one()

    return run(client, _find())


def prepare(client) -> dict[str, str]:  # noqa: ANN001
    """Accounts (viewer, creator with a ready, a processing and a failed video, admin), a comment, a report,
    a moderation flag: so that every kind of form has something to render against."""
    for name in ("viewer", "maker", "boss"):
        assert signup(client, username=name, password=PASSWORD).status_code == 200
        client.cookies.clear()
    maker, viewer = _user_id(client, "maker"), _user_id(client, "viewer")

    async def _rows() -> dict[str, str]:
        async with services(client).db.write() as session:
            ids = {}
            for state in ("ready", "processing", "failed"):
                video = Video(creator_id=maker, state=state, caption=f"{state} bread #baking", duration=8.0,
                              hashtags=["baking"], topic="food", failure_reason="data is damaged"
                              if state == "failed" else None)
                session.add(video)
                await session.flush()
                ids[state] = video.id
            flagged = Video(creator_id=maker, state="ready", moderation="flagged", caption="flagged", duration=5.0)
            session.add(flagged)
            await session.flush()
            session.add(ModerationFlag(video_id=flagged.id, source="terms",
                                       details={"caption": ["x"], "transcript": []}))
            comment = Comment(video_id=ids["ready"], user_id=viewer, text="lovely #bread @maker")
            session.add(comment)
            await session.flush()
            session.add(Comment(video_id=ids["ready"], user_id=maker, text="thanks", parent_id=comment.id))
            session.add(Report(user_id=viewer, video_id=ids["ready"], reason="spam"))
            return ids

    ids = run(client, _rows())
    for video_id in ids.values():  # into the recommender's catalogue, as publishing does
        run(client, services(client).recommender.refresh_video(video_id))
    return ids


SEEDS = ["/", "/search?q=bread", "/tag/baking", "/@maker", "/maker", "/login", "/signup", "/upload", "/studio",
         "/studio/analytics", "/saved", "/settings", "/settings/tokens", "/settings/delete", "/profile/edit",
         "/admin", "/admin/moderation", "/admin/experiments", "/admin/inspect", "/@maker/liked",
         "/@maker/followers", "/@maker/following", "/feed/cards"]


@pytest.fixture
def settings(tmp_path):  # noqa: ANN001, ANN201 - admin and the site address for the form crawl
    return make_settings(tmp_path / "data", admin_usernames=("boss",), min_free_disk_mb=1)


@pytest.mark.parametrize("visitor", ["guest", "viewer", "maker", "boss"])
def test_every_rendered_form_and_htmx_action_can_be_submitted(client, visitor):
    ids = prepare(client)
    seeds = [*SEEDS, f"/v/{ids['ready']}", f"/v/{ids['failed']}", f"/videos/{ids['ready']}/comments",
             f"/videos/{ids['failed']}/status", "/upload?view=studio"]

    def sign_in() -> None:
        client.cookies.clear()
        if visitor != "guest":
            assert login(client, username=visitor, password=PASSWORD).status_code == 200

    sign_in()
    done: set[tuple] = set()
    failures: list[str] = []
    sent, later = [], {}

    def send(item: Submission, rerender: bool = False) -> None:
        if rerender:  # only if the page that rendered it still does (an earlier deletion may have removed it)
            still, _broken = crawl(client, [_local(item.found_on)], limit=1)
            item = next((s for s in still if s.key() == item.key()), None)
            if item is None:
                return
        # The session's current token, as the page would carry it after an earlier answer rotated it (htmx
        # sends the page's hx-headers also for buttons inside fragments, which have no <body> of their own).
        token = csrf_of(client, "/search")
        item.fields = [(k, token if k == "csrf_token" else v) for k, v in item.fields]
        if item.headers.get("HX-Request"):
            item.headers["X-CSRF-Token"] = token
        for answer in submit(client, item):
            where = urlsplit(item.action)
            status = answer.status_code
            sent.append(f"{item.method} {where.path}{'?' + where.query if where.query else ''} -> {status}"
                        + (f" {answer.text[:100]!r}" if status >= 400 else ""))
            if status >= 500 or status in (404, 405):
                failures.append(f"{item.method} {where.path} ({item.tag.strip()[:60]}, from "
                                f"{urlsplit(item.found_on).path}) -> {status}: {answer.text[:160]!r}")

    for _round in range(2):  # the second crawl finds what the first round's submissions made appear
        found, broken = crawl(client, seeds)
        failures.extend(broken)
        for item in found:
            if item.key() in done:
                continue
            done.add(item.key())
            if item.destructive > 1:
                later.setdefault(item.key(), item)
            else:
                send(item)
    # Sign in or up, log out, delete: last, each signing in again after it.
    for item in sorted(later.values(), key=lambda s: s.destructive):
        send(item, rerender=True)
        if item.destructive < 3:
            sign_in()
    assert len(sent) >= 3, f"only {len(sent)} forms found: the crawl saw nothing"
    assert not failures, "\n".join(failures)
    print(f"{visitor}: {len(sent)} forms and htmx actions submitted:", *sent, sep="\n  ")
