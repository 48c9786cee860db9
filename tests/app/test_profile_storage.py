"""Avatars on object storage: one web replica stores the picture, another (its own data dir, the same database and
bucket) serves it from the store; a new picture prunes the old one there; deleting the account removes it."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from tests.app.helpers import services
from tests.app.test_accounts import login, signup
from tests.app.test_object_storage import BUCKET, KEYS, s3_endpoint  # noqa: F401  (module fixture)
from tests.app.test_profiles import _png, edit, jpeg_with_exif
from tests.conftest import csrf_of, make_settings


@pytest.mark.slow
def test_an_avatar_stored_by_one_replica_is_served_by_another_from_the_store(tmp_path, s3_endpoint):  # noqa: F811
    from app.server.app import create_app

    one, two = tmp_path / "one", tmp_path / "two"
    common = {"storage_url": f"s3://{BUCKET}/avatars-test", "storage_endpoint": s3_endpoint,
              "database_url": f"sqlite+aiosqlite:///{(one / 'foryou.db').resolve()}", **KEYS}
    with TestClient(create_app(make_settings(one, **common))) as first:
        signup(first, username="cloudface", password="correct horse")
        assert edit(first, avatar=("me.jpg", jpeg_with_exif(), "image/jpeg")).status_code == 200
        local = first.get("/@cloudface", headers={"accept": "text/html"}).text
        path = local.split('src="/media/avatars/', 1)[1].split('"', 1)[0]
        user_id, name = path.split("/")
        storage = services(first).videos.storage
        assert storage.stat(f"avatar-{user_id}", name) is not None
        stored = (one / "media" / "avatars" / user_id / name).read_bytes()

        with TestClient(create_app(make_settings(two, **common))) as second:
            assert not (two / "media" / "avatars").exists()
            served = second.get(f"/media/avatars/{path}")
            assert served.status_code == 200 and served.content == stored
            assert served.headers["content-type"] == "image/webp"

            # A new picture (stored by the second replica): the first one's object is pruned from the store.
            login(second, "cloudface")
            assert edit(second, avatar=("new.png", _png((64, 64)), "image/png")).status_code == 200
            assert storage.stat(f"avatar-{user_id}", name) is None
            assert second.get(f"/media/avatars/{path}").status_code == 404

            new_name = second.get("/@cloudface", headers={"accept": "text/html"}).text.split(
                f'src="/media/avatars/{user_id}/', 1)[1].split('"', 1)[0]
            assert storage.stat(f"avatar-{user_id}", new_name) is not None
            gone = second.post("/settings/delete", data={"confirm": "cloudface", "password": "correct horse",
                                                         "csrf_token": csrf_of(second, "/settings")},
                               follow_redirects=False)
            assert gone.status_code == 303
            assert storage.stat(f"avatar-{user_id}", new_name) is None, "the deleted account's picture stayed"
