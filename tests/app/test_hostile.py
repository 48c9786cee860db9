"""Hostile traffic against the app in process: login throttling, hosts and URLs, headers, bodies, routes.

The multi-process checks (real ``foryou serve`` processes: logs, proxy headers) are in test_hostile_live.py.
"""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher
from litestar.testing import TestClient

from app.domain.accounts.services import DEVICE_COOKIE
from app.server.security import HEADERS
from tests.app.helpers import add_video, run, services
from tests.conftest import csrf_of, make_settings


def signup(client: TestClient, username: str, password: str = "correct horse") -> None:
    response = client.post("/signup", data={"username": username, "password": password,
                                            "csrf_token": csrf_of(client, "/signup")})
    assert response.status_code in (200, 303), response.text


def login(client: TestClient, username: str, password: str):  # noqa: ANN201
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf_of(client, "/login")})


def test_unknown_usernames_cost_a_password_check_too(client, monkeypatch):
    """No timing oracle: an unknown username is verified against a dummy hash like a known one."""
    signup(client, "erin")
    client.cookies.clear()
    calls: list[str] = []
    real_verify = PasswordHasher.verify

    def counting_verify(self, hashed, password):  # noqa: ANN001, ANN202
        calls.append(hashed)
        return real_verify(self, hashed, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
    assert login(client, "nobody_here", "whatever pw").status_code == 401
    assert login(client, "erin", "wrong password").status_code == 401
    assert len(calls) == 2 and all(h.startswith("$argon2") for h in calls)


def test_failed_logins_elsewhere_never_lock_out_the_owners_known_browser(client):
    signup(client, "frank")  # sign-up marks this browser as frank's device
    owner_device = client.cookies.get(DEVICE_COOKIE)
    assert owner_device
    client.cookies.clear()
    # An attacker guesses from a browser that never signed in as frank, until throttled.
    statuses = [login(client, "frank", f"guess-{i}").status_code for i in range(8)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    throttled = login(client, "frank", "guess-again")
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) in range(1, 62)
    # Even the right password waits from an unknown browser...
    assert login(client, "frank", "correct horse").status_code == 429
    # ...but the owner's own browser signs in at once.
    client.cookies.clear()
    client.cookies.set(DEVICE_COOKIE, owner_device)
    assert login(client, "frank", "correct horse").status_code in (200, 303)


def test_a_forged_device_cookie_counts_as_an_unknown_browser(client):
    signup(client, "gina")
    device = client.cookies.get(DEVICE_COOKIE)
    client.cookies.clear()
    forged = device[:-4] + ("0000" if not device.endswith("0000") else "1111")
    client.cookies.set(DEVICE_COOKIE, forged)
    statuses = [login(client, "gina", f"guess-{i}").status_code for i in range(6)]
    assert statuses[-1] == 429


def test_one_address_guessing_many_usernames_is_throttled(tmp_path):
    from app.server.app import create_app

    settings = make_settings(tmp_path / "data", login_attempts_per_address_per_minute=6)
    with TestClient(create_app(settings)) as client:
        statuses = [login(client, f"user{i}", "some password").status_code for i in range(8)]
    assert statuses[:6] == [401] * 6 and statuses[6:] == [429, 429]


def test_a_foreign_host_header_is_refused_and_urls_come_from_the_public_url(tmp_path):
    from app.server.app import create_app

    settings = make_settings(tmp_path / "data", public_url="https://foryou.example")
    with TestClient(create_app(settings)) as client:
        video_id = add_video(client)
        evil = client.get(f"/v/{video_id}", headers={"host": "evil.example", "accept": "text/html"})
        assert evil.status_code == 400
        for name in HEADERS:
            assert name in evil.headers
        page = client.get(f"/v/{video_id}", headers={"accept": "text/html"})
        assert page.status_code == 200
        og_url = re.search(r'property="og:url" content="([^"]+)"', page.text)
        assert og_url and og_url.group(1) == f"https://foryou.example/v/{video_id}"
        assert "testserver" not in page.text


def test_allowed_hosts_default_to_the_configured_host(tmp_path):
    settings = make_settings(tmp_path, allowed_hosts=(), public_url="")
    assert set(settings.resolved_allowed_hosts) == {"127.0.0.1", "localhost", "::1"}
    public = make_settings(tmp_path, allowed_hosts=(), host="0.0.0.0", public_url="https://tv.example.org")
    assert "tv.example.org" in public.resolved_allowed_hosts and "*" not in public.resolved_allowed_hosts


@pytest.mark.parametrize(("method", "path"), [("GET", "/no/such/page/here"), ("DELETE", "/healthz"),
                                               ("GET", "/media/v_missing/video.mp4"), ("PUT", "/login")])
def test_security_headers_on_unrouted_and_error_responses(client, method, path):
    response = client.request(method, path)
    assert response.status_code in (403, 404, 405)
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, name
    assert response.headers.get("x-request-id")


def test_deep_or_huge_json_bodies_are_4xx(client):
    csrf = csrf_of(client)
    deep = "[" * 50_000 + "]" * 50_000
    for content_type in ("text/plain;charset=UTF-8", "application/json"):
        response = client.post("/api/events", content=deep, headers={"content-type": content_type})
        assert response.status_code == 400, (content_type, response.status_code)
    nested_info = '{"a":' * 40 + "1" + "}" * 40
    nested_event = f'{{"csrf": "{csrf}", "events": [{{"info": {nested_info}}}]}}'
    assert client.post("/api/events", content=nested_event).status_code == 400
    huge = b'{"csrf": "x", "events": [' + b'"' + b"a" * (2 * 1024 * 1024) + b'"]}'
    assert client.post("/api/events", content=huge, headers={"content-type": "application/json"}).status_code == 413
    for garbage in (b"\xff\xfe\x00", b"{", b"null", b"[1,2", b'{"events": "no"}', b"1e999999"):
        response = client.post("/api/events", content=garbage, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500, (garbage, response.status_code)
    # Form endpoints with broken bodies are 4xx as well.
    for body in (b"%zz=%%%", b"a=" + b"b" * 100_000):
        response = client.post("/login", content=body,
                               headers={"content-type": "application/x-www-form-urlencoded", "x-csrf-token": csrf})
        assert 400 <= response.status_code < 500, response.status_code


def test_head_on_media_answers_like_get_without_a_body(client):
    video_id = add_video(client)
    folder = services(client).videos.folder(video_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "video.mp4").write_bytes(b"\x00" * 1000)
    got = client.get(f"/media/{video_id}/video.mp4")
    head = client.head(f"/media/{video_id}/video.mp4")
    assert head.status_code == got.status_code == 200
    assert head.content == b""
    for name in ("content-length", "content-type", "etag", "accept-ranges"):
        assert head.headers[name] == got.headers[name], name
    ranged = client.head(f"/media/{video_id}/video.mp4", headers={"range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.headers["content-range"] == "bytes 10-19/1000"
    assert client.head("/media/v_nothere/video.mp4").status_code == 404


def test_a_kill_inside_publish_never_leaves_its_job_pending_for_a_ready_video(client, monkeypatch):
    """The moment publish has made the video ready, its job row has succeeded too (one transaction): a
    SIGKILL at any later point of the step leaves nothing for the next start-up to trip over."""
    import sqlite3

    from app.db.models import MediaJob
    from media import steps as media_steps

    app_services = services(client)
    video_id = add_video(client, state="processing")

    async def add_job() -> None:
        async with app_services.db.write() as session:
            session.add(MediaJob(video_id=video_id, step="publish", position=0))

    run(client, add_job())
    seen: list[tuple] = []

    def observe_then_continue(*_args: object) -> None:  # runs right after publish's transaction
        with sqlite3.connect(app_services.settings.data_dir / "foryou.db") as db:
            seen.append(db.execute("SELECT v.state, j.status FROM videos v JOIN media_jobs j ON j.video_id = v.id "
                                   "WHERE v.id = ?", (video_id,)).fetchone())

    monkeypatch.setattr(media_steps, "remove_intermediates", observe_then_continue)
    assert run(client, app_services.jobs.run_next()).endswith(":ok")
    assert seen == [("ready", "succeeded")]


def test_logs_are_json_off_a_terminal_and_readable_on_one():
    import io
    import logging

    from app.server.logs import JsonFormatter, ReadableFormatter, wants_json

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert wants_json(None, io.StringIO()) is True
    assert wants_json(None, Terminal()) is False
    assert wants_json(True, Terminal()) is True
    record = logging.makeLogRecord({"name": "foryou.access", "levelname": "INFO", "msg": "request",
                                    "method": "GET", "path": "/x", "status": 200, "ms": 1.5,
                                    "request_id": "abcdef0123456789"})
    assert '"request_id": "abcdef0123456789"' in JsonFormatter().format(record)
    assert re.search(r"foryou\.access: GET /x 200 1\.5ms .*\[abcdef0123456789\]", ReadableFormatter().format(record))


def test_an_event_id_reused_by_another_user_never_touches_the_first_users_event(client):
    import json

    from tests.app.test_events import stored_events

    video_id = add_video(client)

    def send(seconds: float) -> int:
        body = {"csrf": csrf_of(client), "events": [{"event_id": "shared-id-0001", "type": "view",
                                                    "video_id": video_id, "watch_duration": seconds}]}
        return client.post("/api/events", content=json.dumps(body)).status_code

    assert send(7.0) == 202
    first_owner = stored_events(client, event_id="shared-id-0001")[0].user_id
    client.cookies.clear()  # another visitor (another browser) re-sends the same id with a huge watch time
    assert send(86_000.0) == 202
    rows = {row.user_id: row.watch_duration for row in stored_events(client, event_id="shared-id-0001")}
    assert rows[first_owner] == 7.0
    assert len(rows) == 2 and 86_000.0 in rows.values()
    # A real resend by the same visitor still dedupes (and a view's watch time only grows).
    assert send(90.0) == 202
    rows_after = {row.user_id: row.watch_duration for row in stored_events(client, event_id="shared-id-0001")}
    assert len(rows_after) == 2 and rows_after[first_owner] == 7.0


def test_beacons_are_rate_limited_per_visitor_and_per_address(tmp_path):
    import json
    import uuid

    from app.server.app import create_app

    settings = make_settings(tmp_path / "data", beacon_burst=6, beacon_events_per_minute=60,
                             beacon_address_burst=14, beacon_address_events_per_minute=60)
    with TestClient(create_app(settings)) as client:
        video_id = add_video(client)

        def send(n: int) -> object:
            events = [{"event_id": uuid.uuid4().hex, "type": "view", "video_id": video_id, "watch_duration": 1.0}
                      for _ in range(n)]
            return client.post("/api/events", content=json.dumps({"csrf": csrf_of(client), "events": events}))

        assert [send(3).status_code for _ in range(2)] == [202, 202]
        limited = send(3)  # the visitor's burst of 6 is spent
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 4
        # Another visitor from the same address still gets in, until the address's own burst runs out.
        client.cookies.clear()
        assert send(6).status_code == 202
        client.cookies.clear()
        assert send(6).status_code == 429  # 6 + 6 + 6 > 14 for the address
        # Refused batches stored nothing: only the 12 accepted events exist.
        from tests.app.test_events import stored_events

        assert len([e for e in stored_events(client) if e.event_type == "view"]) == 12



def test_a_refused_visitor_is_held_until_retry_after_and_refused_before_its_body_is_read(tmp_path):
    """After a 429 the visitor is refused by the gate in front of the app until its Retry-After: a body that
    is not even JSON gets 429, not 400 (nothing was parsed), and nothing is stored; other visitors from other
    addresses are not held."""
    import json
    import time
    import uuid

    from app.server.app import create_app
    from app.server.ratelimit import BeaconLimits, Penalties, TokenBuckets

    settings = make_settings(tmp_path / "data", beacon_burst=4, beacon_events_per_minute=60,
                             beacon_address_burst=1000, beacon_address_events_per_minute=6000)
    with TestClient(create_app(settings)) as client:
        video_id = add_video(client)

        def events(n: int) -> list[dict]:
            return [{"event_id": uuid.uuid4().hex, "type": "view", "video_id": video_id, "watch_duration": 1.0}
                    for _ in range(n)]

        csrf = csrf_of(client)
        assert client.post("/api/events", content=json.dumps({"csrf": csrf, "events": events(4)})).status_code == 202
        refused = client.post("/api/events", content=json.dumps({"csrf": csrf, "events": events(4)}))
        assert refused.status_code == 429
        started = time.monotonic()
        gated = client.post("/api/events", content=b"{not json at all")
        assert gated.status_code == 429 and int(gated.headers["retry-after"]) >= 1
        assert time.monotonic() - started >= 0.5  # the gate's answer is slowed: a flooder cannot spin
        small = client.post("/api/events", content=json.dumps({"csrf": csrf, "events": events(1)}))
        assert small.status_code == 429  # held until Retry-After, though one token may have come back
        from tests.app.test_events import stored_events

        assert len(stored_events(client, event_type="view")) == 4
        client.cookies.clear()  # another visitor: not held
        assert client.post("/api/events", content=json.dumps(
            {"csrf": csrf_of(client), "events": events(1)})).status_code == 202

    # The hold ends when Retry-After does; memory stays bounded.
    limits = BeaconLimits(TokenBuckets(2, 60), TokenBuckets(100, 600), Penalties(max_keys=3))
    assert limits.admit("alice", "10.0.0.1", 2) == 0
    wait = limits.admit("alice", "10.0.0.1", 2)
    assert wait >= 1 and limits.held("alice", "10.0.0.1") >= 1 and limits.held("bob", "10.0.0.1") == 0
    assert limits.held("alice", None, now=time.monotonic() + wait + 0.01) == 0
    for n in range(10):
        limits.penalties.hold(f"k{n}", 5, time.monotonic())
    assert len(limits.penalties._until) == 3

def test_a_partial_upload_survives_the_sweep_while_held_and_goes_once_abandoned(client):
    import asyncio
    import contextlib

    videos = services(client).videos
    tmp_dir = services(client).settings.uploads_tmp_dir
    arrived, finish = asyncio.Event(), asyncio.Event()

    async def slow_body():  # noqa: ANN202
        yield b"x" * 1000
        arrived.set()
        await finish.wait()
        raise ConnectionResetError("the browser went away")

    async def scenario() -> tuple[int, int, int]:
        receiving = asyncio.ensure_future(videos.receive_stream(slow_body()))
        await arrived.wait()
        live = len(list(tmp_dir.glob("*.upload")))
        removed_while_live = await videos.sweep_orphans()
        finish.set()
        with contextlib.suppress(ConnectionResetError):
            await receiving
        return live, removed_while_live, len(list(tmp_dir.glob("*.upload")))

    live, removed_while_live, after = run(client, scenario())
    assert (live, removed_while_live, after) == (1, 0, 0)
    # A file left by a process that died mid-body (nobody holds it) goes at the next sweep, however young.
    (tmp_dir / "deadbeef.upload").write_bytes(b"partial")
    assert run(client, videos.sweep_orphans()) == 1
    assert not list(tmp_dir.glob("*.upload"))


def test_low_disk_refuses_uploads_with_507_and_is_not_ready_but_reads_work(tmp_path):
    import shutil

    from app.server.app import create_app

    free_mb = shutil.disk_usage(tmp_path).free // (1024 * 1024)
    settings = make_settings(tmp_path / "data", min_free_disk_mb=free_mb + 10_000)
    with TestClient(create_app(settings)) as client:
        video_id = add_video(client)
        signup(client, "hank")
        refused = client.post("/api/uploads", content=b"\x00" * 2048,
                              headers={"x-csrf-token": csrf_of(client, "/upload")})
        assert refused.status_code == 507 and "disk space" in refused.json()["error"]
        assert not list(settings.uploads_tmp_dir.glob("*.upload"))
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["disk"]["ok"] is False
        assert client.get(f"/v/{video_id}", headers={"accept": "text/html"}).status_code == 200
        assert client.get("/", headers={"accept": "text/html"}).status_code == 200


def test_a_write_that_fails_for_lack_of_space_is_503_and_the_outbox_keeps_its_events(client, monkeypatch):
    import json
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from app.domain.events import writer

    video_id = add_video(client)
    csrf = csrf_of(client)

    async def disk_full(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("INSERT INTO events", {}, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(writer, "write_events", disk_full)
    body = json.dumps({"csrf": csrf, "events": [{"event_id": "full-disk-001", "type": "view", "video_id": video_id,
                                                 "watch_duration": 3.0}]})
    response = client.post("/api/events", content=body)
    assert response.status_code == 503 and response.headers["retry-after"]
    monkeypatch.undo()
    assert client.post("/api/events", content=body).status_code == 202  # the outbox's retry is stored


@pytest.mark.parametrize("query", ["", "?view=studio"])
def test_retry_answers_from_the_upload_page_and_from_the_studio(client, query):
    from sqlalchemy import select

    from app.db.models import User, Video

    signup(client, "ivy")

    async def add_failed() -> str:
        async with services(client).db.write() as session:
            owner = (await session.execute(select(User).where(User.username == "ivy"))).scalar_one()
            video = Video(creator_id=owner.id, state="failed", failure_reason="test", caption="x", duration=1.0)
            session.add(video)
            await session.flush()
            return video.id

    video_id = run(client, add_failed())
    response = client.post(f"/videos/{video_id}/retry{query}",
                           headers={"x-csrf-token": csrf_of(client, "/studio"), "hx-request": "true"})
    assert response.status_code == 200, response.text[:300]

    async def state() -> str:
        async with services(client).db.read() as session:
            return (await session.get(Video, video_id)).state

    assert run(client, state()) == "processing"


def test_the_guest_sweep_removes_idle_visitors_and_keeps_everyone_else(client):
    from datetime import timedelta

    from sqlalchemy import select

    from app.db.models import AuthSession, Event, User, utcnow

    old = utcnow() - timedelta(days=40)
    fresh = utcnow()

    async def setup() -> None:
        async with services(client).db.write() as session:
            session.add_all([User(id="u_oldguest", is_guest=True, created_at=old),
                             User(id="u_oldwatch", is_guest=True, created_at=old),
                             User(id="u_newguest", is_guest=True, created_at=fresh),
                             User(id="u_member", username="member", is_guest=False, created_at=old)])
            await session.flush()
            for token, user, seen in (("a" * 64, None, old), ("b" * 64, "u_oldguest", old),
                                      ("c" * 64, "u_newguest", fresh), ("d" * 64, "u_member", old)):
                session.add(AuthSession(token_hash=token, user_id=user, csrf_token="x", created_at=seen,
                                        last_seen_at=seen, expires_at=fresh + timedelta(days=1)))
            session.add(Event(event_id="watch-000001", event_type="view", user_id="u_oldwatch", watch_duration=3.0))

    run(client, setup())
    result = run(client, services(client).sessions.sweep_idle(30))
    assert result["idle_guest_sessions"] >= 2 and result["guest_users"] == 1

    async def left() -> tuple[set, set]:
        async with services(client).db.read() as session:
            users = set((await session.execute(select(User.id))).scalars())
            tokens = set((await session.execute(select(AuthSession.token_hash))).scalars())
            return users, tokens

    users, tokens = run(client, left())
    assert "u_oldguest" not in users and {"u_oldwatch", "u_newguest", "u_member"} <= users
    assert "a" * 64 not in tokens and "b" * 64 not in tokens and {"c" * 64, "d" * 64} <= tokens
