"""The operator dashboard and the recommendation inspector: access, figures, charts and actions."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient
from sqlalchemy import select

from app.db.admin_models import AdminAlert
from app.db.models import MediaJob, User, Video
from tests.app.helpers import add_video, run, services
from tests.app.test_accounts import signup
from tests.app.test_analytics import ev
from tests.conftest import csrf_of, make_settings

ADMIN = "boss"
MODELS = {"whisper": {"state": "available", "model_id": "whisper:tiny.en", "detail": "converted", "random": False},
          "clip": {"state": "missing", "model_id": "clip:ViT-B-32", "detail": "no weights", "random": False},
          "sentence": {"state": "loaded", "model_id": "all-MiniLM-L6-v2", "detail": "package", "random": False}}


@pytest.fixture
def quick_model_status(monkeypatch):  # noqa: ANN001, ANN201
    """Locating real weights takes seconds; tests about other figures show a fixed result instead.

    The real check is covered by test_dashboard_shows_the_real_model_check."""
    from app.domain.system.status import ModelStatus

    monkeypatch.setattr(ModelStatus, "current", lambda self: MODELS)


@pytest.fixture
def admin_client(tmp_path) -> Iterator[TestClient]:  # noqa: ANN001
    """An app whose settings make "boss" an admin at sign-up, with boss signed in."""
    from app.server.app import create_app

    with TestClient(create_app(make_settings(tmp_path / "data", admin_usernames=(ADMIN,)))) as client:
        assert signup(client, username=ADMIN).status_code == 200
        yield client


def post_form(client: TestClient, path: str, **fields: str):  # noqa: ANN201
    return client.post(path, data={"csrf_token": csrf_of(client, "/settings"), **fields}, follow_redirects=False)


def make_viewer(client: TestClient, name: str = "viewer") -> User:
    async def _add() -> User:
        async with services(client).db.write() as session:
            user = User(id=f"u_{name}", username=name, is_guest=False)
            session.add(user)
        return user

    return run(client, _add())


def test_only_admins_see_the_operator_pages(client):  # noqa: ANN001
    assert client.get("/admin", follow_redirects=False).status_code in (302, 303)  # guests: log in first
    signup(client, username="mallory")
    for path in ("/admin", "/admin/moderation", "/admin/experiments", "/admin/inspect"):
        assert client.get(path).status_code == 403
    assert client.post("/admin/rankers/0/rollback", data={"csrf_token": csrf_of(client, "/settings")}
                       ).status_code == 403


def test_dashboard_renders_figures_charts_models_rankers_and_queue(admin_client, quick_model_status):  # noqa: ANN001
    add_video(admin_client, creator="maker", caption="fine #tag", hashtags=["tag"])
    viewer = make_viewer(admin_client)
    run(admin_client, services(admin_client).feed.next_page(viewer, "s1", "foryou"))
    page = admin_client.get("/admin")
    assert page.status_code == 200
    text = page.text
    for needle in ('data-metric="dau"', 'data-metric="retention_d1"', 'data-metric="ctr"', 'data-metric="gini"',
                   "Media job queue", "Ranker versions", "untrained prior", "Fairness of exposure", "Models",
                   "whisper", "New vs established creators"):
        assert needle in text, needle
    assert text.count("<svg") >= 4
    assert 'href="/admin"' in admin_client.get("/settings").text  # the nav links to the dashboard


def test_retry_failed_jobs_and_rollback(admin_client):  # noqa: ANN001
    vid = add_video(admin_client, state="failed")

    async def fail() -> None:
        async with services(admin_client).db.write() as session:
            session.add(MediaJob(video_id=vid, step="transcode", status="failed", error="boom"))

    run(admin_client, fail())
    assert "boom" in admin_client.get("/admin").text
    response = post_form(admin_client, "/admin/jobs/retry")
    assert response.status_code == 303

    async def state() -> str:
        async with services(admin_client).db.read() as session:
            return (await session.get(Video, vid)).state

    assert run(admin_client, state()) == "processing"
    assert "v0 is serving" in admin_client.get(post_form(admin_client, "/admin/rankers/0/rollback")
                                               .headers["location"]).text.replace("version ", "v")
    assert "No ranker version 99" in admin_client.get(post_form(admin_client, "/admin/rankers/99/rollback")
                                                      .headers["location"]).text


def test_threshold_alerts_show_and_are_logged(admin_client, caplog):  # noqa: ANN001
    vid = add_video(admin_client, creator="maker")
    make_viewer(admin_client, "watcher")
    now = time.time()
    run(admin_client, services(admin_client).events.submit([
        ev("impression", "watcher", vid, now - 60, "u_maker"), ev("skip", "watcher", vid, now - 50, "u_maker")]))
    assert post_form(admin_client, "/admin/alerts", skip_rate="0.1").status_code == 303
    with caplog.at_level("WARNING", logger="foryou.alerts"):
        page = admin_client.get("/admin").text
    assert "Skip rate is 1.000, above the bound of 0.100" in page
    assert any("Skip rate" in r.getMessage() for r in caplog.records)

    async def stored() -> list[AdminAlert]:
        async with services(admin_client).db.read() as session:
            return list((await session.execute(select(AdminAlert))).scalars())

    names = [a.name for a in run(admin_client, stored())]
    assert "skip_rate" in names
    admin_client.get("/admin")
    assert len(run(admin_client, stored())) == len(names)  # once per hour, not on every page view


def test_inspector_shows_profile_candidates_scores_and_final_order(admin_client):  # noqa: ANN001
    for i in range(4):
        add_video(admin_client, creator=f"maker{i}", caption=f"clip {i} #t{i}", hashtags=[f"t{i}"], topic=f"t{i}")
    run(admin_client, services(admin_client).recommender.bootstrap())
    viewer = make_viewer(admin_client)
    cards = run(admin_client, services(admin_client).feed.next_page(viewer, "s1", "foryou"))
    assert cards
    page = admin_client.get("/admin/inspect/viewer")
    assert page.status_code == 200
    text = page.text
    for needle in ("Final order of the last page", "Candidates by source", "P(", "Value", "Short term",
                   "Long term", "Avoided", cards[0].video.caption):
        assert needle in text, needle
    assert admin_client.get("/admin/inspect?user=viewer", follow_redirects=False).headers["location"] \
        == "/admin/inspect/viewer"
    assert admin_client.get("/admin/inspect/nobody").status_code == 404


def test_dashboard_shows_the_real_model_check(admin_client):  # noqa: ANN001
    """No stub: the page waits a few seconds for the registry's own status, then says it is still locating."""
    deadline = time.monotonic() + 90
    while True:
        text = admin_client.get("/admin").text
        if "Still locating model weights" not in text or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    models = text[text.index('id="models"'):]
    models = models[:models.index("</section>")]
    assert "Still locating" not in models, "the model check never finished"
    for name, model_id in (("whisper", "whisper:tiny.en"), ("clip", "clip:ViT-B-32:laion2b_s34b_b79k"),
                           ("sentence", "text:all-MiniLM-L6-v2")):
        assert f"<strong>{name}</strong>" in models and model_id in models, name
    assert "missing" in models  # no CLIP weights offline, said plainly
