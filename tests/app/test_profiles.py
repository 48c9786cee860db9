"""Profiles: editing name, bio and avatar (Pillow-checked), the private Liked tab, follower/following lists and
view counts on profile tiles and in the studio."""

from io import BytesIO

import pytest
from PIL import Image

from app.db.models import Event, User, Video
from tests.app.helpers import run, services
from tests.app.test_accounts import signup
from tests.app.test_interactions import add_ready, hx
from tests.app.test_uploads import logout
from tests.conftest import csrf_of

pytestmark = pytest.mark.both_databases

HTML = {"accept": "text/html"}


def jpeg_with_exif(size=(1200, 800), colour=(200, 40, 90)) -> bytes:
    image = Image.new("RGB", size, colour)
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0131] = "leaky-firmware 1.0"  # Software
    exif[0x0112] = 6  # Orientation: rotate 90° to display
    out = BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), quality=90)
    return out.getvalue()


def edit(client, name="Maya Lin", bio="Sunsets and\nmaps.", avatar=None, **extra):
    files = {"avatar": avatar} if avatar is not None else None
    return client.post("/profile/edit", data={"display_name": name, "bio": bio, **extra}, files=files,
                       headers=hx(client))


def avatar_files(client):
    folder = services(client).settings.media_dir / "avatars"
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")) if folder.is_dir() else []


def test_editing_needs_an_account(client):
    page = client.get("/profile/edit", headers=HTML, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/profile/edit"


def test_name_and_bio_are_saved_and_shown(client):
    signup(client, username="maya")
    assert 'href="/profile/edit"' in client.get("/@maya", headers=HTML).text
    form = client.get("/profile/edit", headers=HTML)
    assert form.status_code == 200 and 'name="display_name"' in form.text and 'value="maya"' in form.text
    saved = edit(client, name="  Maya   Lin ", bio="Sunsets and\r\nmaps.\u0007")
    assert saved.status_code == 200 and saved.headers["hx-redirect"] == "/@maya"
    user = run(client, _user_by_name(client, "maya"))
    assert (user.display_name, user.bio) == ("Maya Lin", "Sunsets and\nmaps.")
    page = client.get("/@maya", headers=HTML).text
    assert "<h1>Maya Lin</h1>" in page and "Sunsets and\nmaps." in page
    # A plain (url-encoded) form works too, and an empty name falls back to the handle.
    plain = client.post("/profile/edit", data={"display_name": "", "bio": "", "csrf_token": csrf_of(client)},
                        follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == "/@maya"
    assert "<h1>maya</h1>" in client.get("/@maya", headers=HTML).text


async def _user_by_name(client, username):
    from sqlalchemy import select

    async with services(client).db.read() as session:
        return (await session.execute(select(User).where(User.username == username))).scalar_one()


def test_too_long_text_is_refused_in_place(client):
    signup(client, username="maya")
    response = edit(client, bio="x" * 281)
    assert response.status_code == 400
    assert 'class="form-error"' in response.text and "280 characters" in response.text
    assert 'id="profile-form"' in response.text and "<html" not in response.text  # the form, for htmx to swap
    assert run(client, _user_by_name(client, "maya")).bio == ""


def test_an_avatar_is_checked_rebuilt_as_a_small_webp_without_metadata_and_shown(client):
    signup(client, username="maya")
    video = own_video(client, "maya", caption="my clip")
    data = jpeg_with_exif()
    assert b"SecretCam" in data
    response = edit(client, avatar=("me.jpg", data, "image/jpeg"))
    assert response.status_code == 200, response.text
    user = run(client, _user_by_name(client, "maya"))
    assert user.avatar_path and user.avatar_path.startswith(f"media/avatars/{user.id}/")
    (stored,) = avatar_files(client)
    raw = stored.read_bytes()
    assert b"SecretCam" not in raw and b"leaky" not in raw and b"Exif" not in raw
    image = Image.open(BytesIO(raw))
    assert image.format == "WEBP" and image.size == (256, 256) and not image.getexif()
    served = client.get(f"/{user.avatar_path}")
    assert served.status_code == 200 and served.headers["content-type"] == "image/webp" and served.content == raw
    img_tag = f'src="/{user.avatar_path}"'
    assert img_tag in client.get("/@maya", headers=HTML).text  # the profile
    assert img_tag in client.get(f"/v/{video}", headers=HTML).text  # the card's rail
    assert img_tag in client.get("/search?q=maya", headers=HTML).text  # search's creator list
    assert img_tag in client.get("/profile/edit", headers=HTML).text

    # A new picture replaces the old one: the old file is gone and its URL answers 404.
    assert edit(client, avatar=("two.png", _png((300, 500)), "image/png")).status_code == 200
    newer = run(client, _user_by_name(client, "maya")).avatar_path
    assert newer != user.avatar_path and len(avatar_files(client)) == 1
    assert client.get(f"/{user.avatar_path}").status_code == 404
    # Removing it: back to the initial, no file left.
    assert edit(client, remove_avatar="1").status_code == 200
    assert run(client, _user_by_name(client, "maya")).avatar_path is None and avatar_files(client) == []
    assert client.get(f"/{newer}").status_code == 404


def _png(size, mode="RGB") -> bytes:
    out = BytesIO()
    Image.new(mode, size).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "body", "status", "words"),
    [
        ("notes.jpg", b"this is not an image at all " * 40, 422, "not an image"),
        ("truncated.png", _png((400, 400))[:300], 422, "damaged"),
        ("bomb.png", _png((10_000, 10_000), mode="1"), 422, "megapixels"),
        ("tiny.png", _png((4, 4)), 422, "at least 16"),
        ("svg.png", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', 422, "not an image"),
        ("huge.jpg", b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024 + 10), 413, "larger than 5 mb"),
    ],
)
def test_bad_avatar_files_get_a_clear_error_in_place_and_store_nothing(client, name, body, status, words):
    signup(client, username="maya")
    response = edit(client, name="Changed", avatar=(name, body, "image/png"))
    assert response.status_code == status, response.text[:300]
    assert words in response.text.lower()
    assert 'class="form-error"' in response.text and 'aria-invalid="true"' in response.text
    user = run(client, _user_by_name(client, "maya"))
    assert user.avatar_path is None and user.display_name == "maya"  # nothing saved, the name included
    assert avatar_files(client) == []


def test_the_liked_tab_is_only_for_its_owner(client):
    liked = add_ready(client, creator="maker", caption="loved one")
    add_ready(client, creator="maker", caption="other one")
    signup(client, username="fan")
    client.post(f"/videos/{liked}/like", headers=hx(client))
    own = client.get("/@fan", headers=HTML).text
    assert 'href="/@fan/liked"' in own
    tab = client.get("/@fan/liked", headers=HTML)
    assert tab.status_code == 200 and f'href="/v/{liked}?from=liked"' in tab.text and "other one" not in tab.text
    # Opened from the tab, the video page swipes through the likes.
    assert "Back to your likes" in client.get(f"/v/{liked}?from=liked", headers=HTML).text
    logout(client)
    assert client.get("/@fan/liked", headers=HTML).status_code == 404
    assert 'href="/@fan/liked"' not in client.get("/@fan", headers=HTML).text
    signup(client, username="snoop")
    assert client.get("/@fan/liked", headers=HTML).status_code == 404
    assert 'href="/@fan/liked"' not in client.get("/@fan", headers=HTML).text
    assert client.get("/@nobody/liked", headers=HTML).status_code == 404


def test_follower_and_following_lists_are_linked_from_the_counts(client):
    add_ready(client, creator="maya")
    add_ready(client, creator="leo")
    signup(client, username="fan")
    client.post("/creators/u_maya/follow", headers=hx(client))
    client.post("/creators/u_leo/follow", headers=hx(client))
    profile = client.get("/@maya", headers=HTML).text
    assert 'href="/@maya/followers"' in profile and 'href="/@maya/following"' in profile
    followers = client.get("/@maya/followers", headers=HTML)
    assert followers.status_code == 200 and 'href="/@fan"' in followers.text
    following = client.get("/@fan/following", headers=HTML).text
    assert 'href="/@maya"' in following and 'href="/@leo"' in following
    # Someone else looking sees follow buttons with their own state.
    logout(client)
    signup(client, username="other")
    client.post("/creators/u_leo/follow", headers=hx(client))
    seen = client.get("/@fan/following", headers=HTML).text
    assert 'hx-delete="/creators/u_leo/follow"' in seen and 'hx-post="/creators/u_maya/follow"' in seen
    assert "No followers yet" in client.get("/@other/followers", headers=HTML).text
    assert client.get("/@nobody/followers", headers=HTML).status_code == 404


def _events(client, *rows):
    async def _add():
        async with services(client).db.write() as session:
            for index, (kind, user_id, video_id) in enumerate(rows):
                session.add(Event(event_id=f"e{index}", event_type=kind, user_id=user_id, video_id=video_id,
                                  creator_id="u_maya", watch_duration=3.0 if kind == "view" else None))
    run(client, _add())


def test_views_show_on_profile_tiles_and_in_the_studio(client):
    signup(client, username="maya")
    watched = own_video(client, "maya", caption="watched")
    own_video(client, "maya", caption="unwatched")
    maya = run(client, _user_by_name(client, "maya")).id
    for viewer in ("a", "b", "c"):
        run(client, _add_user(client, viewer))
    _events(client, ("view", "u_a", watched), ("view", "u_b", watched), ("view", "u_c", watched),
            ("view", maya, watched),  # the creator's own playback is not a view
            ("impression", "u_a", watched), ("impression", "u_b", watched), ("impression", "u_c", watched),
            ("impression", "u_d", watched), ("like", "u_a", watched))
    page = client.get("/@maya", headers=HTML).text
    assert f'href="/v/{watched}?from=profile%3Amaya"' in page and 'data-views="3"' in page and "3 views" in page
    assert 'data-views="0"' in page
    studio = client.get("/studio", headers=HTML).text
    assert 'data-views="3"' in studio and 'data-impressions="4"' in studio


def own_video(client, username, state="ready", **fields):
    """A video of a signed-up user (whose id is random, unlike add_video's ``u_<name>``)."""
    async def _add():
        user = await _user_by_name(client, username)
        async with services(client).db.write() as session:
            video = Video(creator_id=user.id, state=state, caption=fields.pop("caption", "a video"), duration=10.0,
                          **fields)
            session.add(video)
            await session.flush()
            return video.id
    video_id = run(client, _add())
    if state == "ready":
        run(client, services(client).recommender.refresh_video(video_id))
    return video_id


async def _add_user(client, name):
    async with services(client).db.write() as session:
        session.add(User(id=f"u_{name}", username=name, display_name=name, is_guest=False))


def test_avatars_survive_the_orphan_sweep_and_go_with_the_account(client):
    signup(client, username="maya")
    assert edit(client, avatar=("me.jpg", jpeg_with_exif(), "image/jpeg")).status_code == 200
    (stored,) = avatar_files(client)
    # The media sweep removes folders no video owns: the avatars' folder is not one of them.
    run(client, services(client).videos.sweep_orphans(folder_grace_s=0))
    assert stored.is_file()
    deleted = client.post("/settings/delete", data={"csrf_token": csrf_of(client, "/settings"), "confirm": "maya",
                                                    "password": "correct horse"}, follow_redirects=False)
    assert deleted.status_code == 303
    assert not stored.exists()


def test_the_avatar_shows_next_to_comments(client):
    video = add_ready(client, creator="maker")
    signup(client, username="maya")
    assert edit(client, avatar=("me.jpg", jpeg_with_exif(), "image/jpeg")).status_code == 200
    assert client.post(f"/videos/{video}/comments", data={"text": "nice"}, headers=hx(client)).status_code < 400
    thread = client.get(f"/videos/{video}/comments", headers=hx(client)).text
    path = run(client, _user_by_name(client, "maya")).avatar_path
    assert "nice" in thread and f'src="/{path}"' in thread
