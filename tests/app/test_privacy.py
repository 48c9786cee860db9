"""Privacy: the settings page (muted words, blocks), the data export, and account deletion leaving no trace."""

from __future__ import annotations

import io
import json
import sqlite3
import time
import zipfile

import numpy as np
from sqlalchemy import select

from app.adapters.vector_store import VideoVectors
from app.db.models import Comment, Follow, HiddenCreator, Like, User
from tests.app.helpers import add_video, run, services
from tests.app.test_accounts import signup
from tests.app.test_analytics import ev, video_of
from tests.conftest import csrf_of

NAME = "zed_quits"


def me(client) -> User:  # noqa: ANN001
    async def _get() -> User:
        async with services(client).db.read() as session:
            return (await session.execute(select(User).where(User.username == NAME))).scalar_one()

    return run(client, _get())


def form(client, path: str, **fields: str):  # noqa: ANN001, ANN201
    return client.post(path, data={"csrf_token": csrf_of(client, "/settings"), **fields}, follow_redirects=False)


def test_settings_mute_words_and_block_creators(client):  # noqa: ANN001
    other = add_video(client, creator="loud", caption="shouting #noise", hashtags=["noise"])
    quiet = add_video(client, creator="calm", caption="rain sounds")
    run(client, services(client).recommender.bootstrap())
    signup(client, username=NAME)
    assert client.get("/settings").status_code == 200
    assert form(client, "/settings/muted", words="Spoilers, cliffhanger , spoilers").status_code == 303
    assert me(client).preferences["muted_words"] == ["spoilers", "cliffhanger"]
    assert "No creator by that name" in client.get(form(client, "/settings/blocked", username="@nobody")
                                                   .headers["location"]).text
    form(client, "/settings/blocked", username="@loud")
    page = client.get("/settings").text
    assert "@loud" in page and "spoilers, cliffhanger" in page
    user = me(client)
    served = {c.video.id for c in run(client, services(client).feed.next_page(user, "s", "foryou", k=10))}
    assert quiet in served and other not in served
    profile = services(client).recommender.engine.inspect_user(user.id)
    assert profile["muted_words"] and "u_loud" in profile["blocked_creators"]
    form(client, "/settings/blocked/u_loud/remove")

    async def blocks() -> list:
        async with services(client).db.read() as session:
            return list((await session.execute(select(HiddenCreator))).scalars())

    assert run(client, blocks()) == []


def populate(client) -> tuple[User, str]:  # noqa: ANN001
    """An account with an upload (files + vectors), a like, a comment, a follow each way and events."""
    signup(client, username=NAME)
    user = me(client)
    theirs = add_video(client, creator="friend", caption="friend's video")
    mine = video_of(client, NAME, caption="my upload #hello", duration=5.0)
    folder = services(client).settings.media_dir / mine
    folder.mkdir(parents=True)
    (folder / "video.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 fake video")
    (folder / "poster.jpg").write_bytes(b"\xff\xd8 fake poster")
    services(client).vectors.upsert_video(VideoVectors(
        video_id=mine, creator_id=user.id, topic="", hashtags=["hello"], caption="my upload", duration=5.0,
        created_at=time.time(), content_vector=np.ones(8, dtype=np.float32), content_model="test"))

    async def rows() -> None:
        async with services(client).db.write() as session:
            session.add(Like(user_id=user.id, video_id=theirs))
            session.add(Comment(user_id=user.id, video_id=theirs, text="so good, says zed"))
            session.add(Follow(follower_id=user.id, creator_id="u_friend"))
            session.add(Follow(follower_id="u_friend", creator_id=user.id))

    run(client, rows())
    now = time.time()
    run(client, services(client).events.submit([
        EventIn_(ev("view", "x", theirs, now - 30, "u_friend", 4.0, source="foryou"), user.id),
        EventIn_(ev("comment", "x", theirs, now - 20, "u_friend", text="so good, says zed"), user.id),
        ev("view", "friend", mine, now - 10, user.id, 3.0),
        ev("follow", "friend", None, now - 5, user.id),
    ]))
    return user, mine


def EventIn_(event, user_id: str):  # noqa: ANN001, ANN201, N802
    event.user_id = user_id
    return event


def test_export_is_a_zip_of_everything_including_video_files(client):  # noqa: ANN001
    user, mine = populate(client)
    response = client.get("/settings/export")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert f"foryou-{NAME}-data.zip" in response.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = set(archive.namelist())
    assert {"profile.json", "events.json", "comments.json", "likes.json", "following.json", "uploads.json",
            f"uploads/{mine}/video.mp4", f"uploads/{mine}/poster.jpg"} <= names
    profile = json.loads(archive.read("profile.json"))
    assert profile["username"] == NAME and "password_hash" not in profile
    events = json.loads(archive.read("events.json"))
    assert {e["event_type"] for e in events} == {"view", "comment"} and all(e["user_id"] == user.id for e in events)
    assert json.loads(archive.read("comments.json"))[0]["text"] == "so good, says zed"
    assert archive.read(f"uploads/{mine}/video.mp4").endswith(b"fake video")
    assert list(services(client).settings.uploads_tmp_dir.glob("*.zip")) == []  # the temporary zip is gone


def test_deleting_an_account_leaves_nothing_that_can_be_tied_to_it(client):  # noqa: ANN001
    user, mine = populate(client)
    assert client.get("/settings/delete").status_code == 200
    wrong = form(client, "/settings/delete", confirm=NAME, password="not it")
    assert "password is not right" in client.get(wrong.headers["location"]).text
    assert form(client, "/settings/delete", confirm="someone", password="correct horse").status_code == 303
    assert me_or_none(client) is not None
    done = form(client, "/settings/delete", confirm=NAME, password="correct horse")
    assert done.status_code == 303 and done.headers["location"].startswith("/")
    assert me_or_none(client) is None
    assert client.get("/settings", follow_redirects=False).status_code in (302, 303)  # signed out

    settings = services(client).settings
    db = sqlite3.connect(settings.data_dir / "foryou.db")
    try:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
            for row in db.execute(f'SELECT * FROM "{table}"').fetchall():  # noqa: S608
                text = repr(row)
                assert user.id not in text and NAME not in text and mine not in text and "says zed" not in text, \
                    (table, row)
        anonymous = db.execute("SELECT event_type, user_id, session_id FROM events WHERE user_id IS NULL").fetchall()
        assert {e for e, _, _ in anonymous} == {"view", "comment"}  # aggregates keep the anonymised history
    finally:
        db.close()
    assert not (settings.media_dir / mine).exists()
    assert services(client).vectors.vector_of(mine) is None
    assert services(client).vectors.count(where=f"creator_id = '{user.id}'") == 0
    assert services(client).recommender.engine.inspect_item(mine) is None
    assert services(client).recommender.engine.inspect_user(user.id)["known"] is False


def me_or_none(client) -> User | None:  # noqa: ANN001
    async def _get() -> User | None:
        async with services(client).db.read() as session:
            return (await session.execute(select(User).where(User.username == NAME))).scalar_one_or_none()

    return run(client, _get())
