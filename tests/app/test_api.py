"""The JSON API /api/v1: tokens (hashed, scoped, revocable), cursor pages that never repeat or skip, the
per-token rate limit, events with the beacon's rules, likes, follows, video metadata and search."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time

import pytest

from app.db.api_models import ApiFeed
from tests.app.api_helpers import SECRET, make_token
from tests.app.helpers import run, services
from tests.app.test_interactions import add_ready
from tests.conftest import csrf_of, make_settings


@pytest.fixture
def settings(tmp_path):
    # Generous limit for the functional tests; the rate-limit test builds its own app at the real default.
    return make_settings(tmp_path / "data", api_rate_per_second=1000)


def _all_pages(client, headers, limit):  # noqa: ANN001, ANN202
    pages, cursor = [], None
    for _ in range(100):
        body = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.post("/api/v1/recommendations", json=body, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        if not page["has_more"]:
            assert page["next_cursor"] is None
            return pages
        cursor = page["next_cursor"]
    raise AssertionError("pagination never ended")


def test_token_is_stored_hashed_shown_once_and_refused_once_revoked(client, settings):
    headers = make_token(client, scopes=("read",), name="my script")
    secret = headers["authorization"].removeprefix("Bearer ")
    me = client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200 and me.json()["username"] == "alice" and me.json()["scopes"] == ["read"]

    db = sqlite3.connect(settings.data_dir / "foryou.db")
    token_id, stored_hash, prefix = db.execute("SELECT id, token_hash, prefix FROM api_tokens").fetchone()
    assert stored_hash == hashlib.sha256(secret.encode()).hexdigest() and secret.startswith(prefix)
    dump = "\n".join(db.iterdump())
    assert secret not in dump  # only the hash is kept
    listing = client.get("/settings/tokens", headers={"accept": "text/html"})
    assert "my script" in listing.text and secret not in listing.text and SECRET.search(listing.text) is None

    revoked = client.post(f"/settings/tokens/{token_id}/revoke",
                          data={"csrf_token": csrf_of(client, "/settings/tokens")}, follow_redirects=False)
    assert revoked.status_code == 303
    refused = client.get("/api/v1/me", headers=headers)
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]
    assert "Bearer" in refused.headers["www-authenticate"]
    assert client.get("/api/v1/me").status_code == 401  # no token at all
    assert client.get("/api/v1/me", headers={"authorization": "Bearer fy_madeup"}).status_code == 401


def test_scopes_are_enforced_and_a_token_speaks_only_for_its_owner(client):
    read_only = make_token(client, scopes=("read",))
    event = {"events": [{"event_id": "evt-00000001", "type": "skip", "video_id": add_ready(client)}]}
    denied = client.post("/api/v1/events", json=event, headers=read_only)
    assert denied.status_code == 403 and "write" in denied.json()["error"]
    other = client.post("/api/v1/recommendations", json={"user_id": "u_someoneelse"}, headers=read_only)
    assert other.status_code == 403
    write_only = make_token(client, scopes=("write",), sign_up=False)
    assert client.get("/api/v1/me", headers=write_only).status_code == 403
    assert client.post("/api/v1/events", json=event, headers=write_only).status_code == 202


def test_cursor_pages_never_repeat_or_skip(client):
    catalogue = {add_ready(client, creator=f"maker{i % 5}", caption=f"clip {i} #tag{i % 3}") for i in range(23)}
    headers = make_token(client)
    pages = _all_pages(client, headers, limit=5)
    served = [item["video_id"] for page in pages for item in page["items"]]
    assert len(served) == len(set(served))  # never a repeat
    assert set(served) == catalogue  # nothing skipped: every published video, once
    assert [len(p["items"]) for p in pages] == [5, 5, 5, 5, 3]
    first = pages[0]["items"][0]
    assert set(first) >= {"video_id", "score", "reason"} and first["reason"] and isinstance(first["score"], float)

    # Pages are exactly consecutive slices of the stored run, and a cursor can be replayed (same page again).
    async def stored():  # noqa: ANN202
        async with services(client).db.read() as session:
            feeds = (await session.execute(ApiFeed.__table__.select())).all()
            return [dict(row._mapping) for row in feeds]

    (feed,) = run(client, stored())
    assert [item["video_id"] for item in feed["items"]] == served
    again = client.post("/api/v1/recommendations", json={"limit": 5, "cursor": pages[1]["next_cursor"]},
                        headers=headers).json()
    assert again == pages[2]
    # A second run starts over with a cursor of its own; the first run's cursors still work.
    assert client.post("/api/v1/recommendations", json={"limit": 5}, headers=headers).json()["has_more"] in (True,
                                                                                                          False)
    assert client.post("/api/v1/recommendations", json={"limit": 5, "cursor": pages[3]["next_cursor"]},
                       headers=headers).json() == pages[4]


def test_cursors_are_opaque_signed_and_bound_to_their_user(client):
    for i in range(4):
        add_ready(client, creator=f"m{i}", caption=f"v{i}")
    alice = make_token(client, username="alice")
    cursor = client.post("/api/v1/recommendations", json={"limit": 2}, headers=alice).json()["next_cursor"]
    # Not a readable feed id (f_ and 12 hex digits) in the clear; a bare "f_" may occur in the signature's base64.
    assert cursor and not re.search(r"f_[0-9a-f]{12}", cursor)
    client.cookies.clear()
    bob = make_token(client, username="bob")
    stolen = client.post("/api/v1/recommendations", json={"limit": 2, "cursor": cursor}, headers=bob)
    assert stolen.status_code == 400
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    assert client.post("/api/v1/recommendations", json={"limit": 2, "cursor": tampered},
                       headers=alice).status_code == 400
    assert client.post("/api/v1/recommendations", json={"limit": 0}, headers=alice).status_code == 400
    assert client.post("/api/v1/recommendations", json={"limit": 2, "cursor": "garbage"},
                       headers=alice).status_code == 400


def test_rate_limit_answers_429_with_retry_after_per_token(tmp_path):
    from litestar.testing import TestClient

    from app.server.app import create_app

    with TestClient(create_app(make_settings(tmp_path / "data"))) as client:
        assert client.app.state.settings.api_rate_per_second == 5  # the real default
        first = make_token(client, username="alice", scopes=("read",))
        second = make_token(client, username="alice", scopes=("read",), sign_up=False)
        started = time.monotonic()
        codes = [client.get("/api/v1/me", headers=first) for _ in range(11)]
        elapsed = time.monotonic() - started
        limited = [r for r in codes if r.status_code == 429]
        if elapsed < 1.0:  # 11 calls inside one second span at most two one-second windows: 10 allowed
            assert limited
        for response in limited:
            assert int(response.headers["retry-after"]) >= 1 and response.json()["status"] == 429
        assert sum(r.status_code == 200 for r in codes) <= 5 * (int(elapsed) + 2)
        assert client.get("/api/v1/me", headers=second).status_code == 200  # another token has its own budget
        time.sleep(1.05)
        assert client.get("/api/v1/me", headers=first).status_code == 200  # the window has passed


def test_events_follow_the_beacon_rules_and_dedup(client, settings):
    video = add_ready(client, creator="maker")
    headers = make_token(client)
    batch = {"events": [{"event_id": "api-view-0001", "type": "view", "video_id": video, "watch_duration": 4.5},
                        {"event_id": "api-skip-0001", "type": "skip", "video_id": video}]}
    first = client.post("/api/v1/events", json=batch, headers=headers)
    assert first.status_code == 202 and first.json() == {"accepted": 2, "duplicates": 0}
    assert client.post("/api/v1/events", json=batch, headers=headers).json() == {"accepted": 0, "duplicates": 2}
    bad = {"events": [{"event_id": "api-like-0001", "type": "like", "video_id": video},
                      {"event_id": "short", "type": "view", "video_id": video}]}
    rejected = client.post("/api/v1/events", json=bad, headers=headers)
    assert rejected.status_code == 422 and len(rejected.json()["problems"]) >= 3  # like, id, missing watch time
    unknown = client.post("/api/v1/events", headers=headers,
                          json={"events": [{"event_id": "api-skip-0002", "type": "skip", "video_id": "v_nope"}]})
    assert unknown.status_code == 422
    db = sqlite3.connect(settings.data_dir / "foryou.db")
    rows = db.execute("SELECT event_type, user_id, watch_duration FROM events WHERE event_id LIKE 'api-%' "
                      "ORDER BY event_type").fetchall()
    (user_id,) = db.execute("SELECT id FROM users WHERE username = 'alice'").fetchone()
    assert rows == [("skip", user_id, None), ("view", user_id, 4.5)]


def test_likes_follows_video_metadata_and_search(client):
    videos = [add_ready(client, creator=f"maker{i}", caption=f"sourdough loaf {i} #bread",
                        hashtags=["bread"]) for i in range(5)]
    headers = make_token(client)
    csrf = csrf_of(client)
    for video in videos:
        assert client.post(f"/videos/{video}/like", headers={"x-csrf-token": csrf, "hx-request": "true"}).is_success
    for i in range(3):
        assert client.post(f"/creators/u_maker{i}/follow",
                           headers={"x-csrf-token": csrf, "hx-request": "true"}).is_success
    liked, cursor = [], None
    while True:
        page = client.get("/api/v1/me/likes", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                          headers=headers).json()
        liked += [item["video_id"] for item in page["items"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert sorted(liked) == sorted(videos) and len(liked) == len(set(liked))
    follows = client.get("/api/v1/me/follows", params={"limit": 50}, headers=headers).json()
    assert sorted(f["creator"]["username"] for f in follows["items"]) == ["maker0", "maker1", "maker2"]

    meta = client.get(f"/api/v1/videos/{videos[0]}", headers=headers)
    assert meta.status_code == 200
    body = meta.json()
    assert body["caption"] == "sourdough loaf 0 #bread" and body["hashtags"] == ["bread"] and body["like_count"] == 1
    assert body["creator"]["username"] == "maker0" and body["video_url"] == f"/media/{videos[0]}/video.mp4"
    assert client.get("/api/v1/videos/v_missing", headers=headers).status_code == 404

    found = client.get("/api/v1/search", params={"q": "sourdough"}, headers=headers).json()
    assert {v["id"] for v in found["videos"]} == set(videos)
    assert client.get("/api/v1/search", params={"q": ""}, headers=headers).status_code == 400


def test_openapi_schema_documents_the_api_and_only_the_api(client):
    schema = client.get("/schema/openapi.json").json()
    assert set(schema["paths"]) == {"/api/v1/me", "/api/v1/recommendations", "/api/v1/videos/{video_id}",
                                    "/api/v1/events", "/api/v1/me/likes", "/api/v1/me/follows", "/api/v1/search"}
    assert schema["components"]["securitySchemes"]["PersonalAccessToken"]["scheme"] == "bearer"
    page = schema["components"]["schemas"]["RecommendationsPage"]["properties"]
    assert set(page) == {"items", "has_more", "next_cursor"}
    # The HTML app still works as before.
    assert client.get("/", headers={"accept": "text/html"}).status_code == 200
