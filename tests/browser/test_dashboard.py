"""The operator dashboard and creator analytics in a real browser, after a simulated day of traffic.

A small generator plays a day (and a bit of the week before) of viewers on the live server's catalogue and
writes their events through the app's own event writer (``app.domain.events.writer.write_events``: dedupe,
sessionization), with timestamps spread over the day. Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from datetime import UTC, datetime

import pytest

from tests.browser.conftest import CATALOGUE

pytestmark = pytest.mark.browser

DAY = 86_400.0
SOURCES = [("foryou", "ann/long_term"), ("foryou", "trending"), ("foryou", "popular"), ("following", "following"),
           ("", "profile"), ("", "search"), ("", "permalink")]


def simulate_traffic(settings, n_users: int = 40, seed: int = 7) -> int:  # noqa: ANN001
    """Write a simulated day of traffic through the app's event writer; returns the number of events."""
    from app.db.engine import Database
    from app.db.models import User
    from app.domain.events.writer import EventIn, write_events

    rng = random.Random(seed)
    now = time.time()
    videos = [(vid, f"u_{creator}") for vid, creator, *_ in CATALOGUE]
    events: list[EventIn] = []
    users = [f"u_sim{i:03d}" for i in range(n_users)]
    for index, user in enumerate(users):
        taste = rng.random()
        days = [day for day, p in ((0.0, 0.85), (1.0, 0.6), (2.0, 0.4), (7.0, 0.3)) if index < 5 or rng.random() < p]
        for day in days:
            for _ in range(rng.randint(1, 3)):  # sessions that day
                t = now - day * DAY - rng.uniform(600, DAY - 600)
                for position in range(rng.randint(3, 9)):
                    vid, creator = videos[0] if rng.random() < 0.35 else rng.choice(videos)
                    feed, source = rng.choice(SOURCES) if rng.random() < 0.5 else SOURCES[0]
                    info = {"position": position, "source": source, "feed": feed, "request_id": f"r{index}{t:.0f}"}
                    key = f"sim-{user}-{t:.2f}"
                    events.append(EventIn(f"{key}-i", "impression", user, vid, creator,
                                          timestamp=_at(t), additional_info=info))
                    t += rng.uniform(1, 3)
                    if rng.random() < 0.25 + 0.2 * taste:
                        events.append(EventIn(f"{key}-s", "skip", user, vid, creator, timestamp=_at(t)))
                        continue
                    watched = round(min(6.0, rng.expovariate(1 / (2.5 + 3 * taste))), 2)
                    events.append(EventIn(f"{key}-v", "view", user, vid, creator, watched, _at(t),
                                          {**info, "final": True}))
                    t += watched
                    for kind, p in (("like", 0.15), ("share", 0.04), ("save", 0.05), ("comment", 0.03),
                                    ("follow", 0.02)):
                        if rng.random() < p * (1 + taste):
                            events.append(EventIn(f"{key}-{kind}", kind, user, vid, creator, timestamp=_at(t)))

    async def _write() -> None:
        db = Database(settings.resolved_database_url)
        try:
            async with db.write() as session:
                for user in users:
                    session.add(User(id=user, username=user[2:], display_name=user[2:], is_guest=False))
            events.sort(key=lambda e: e.timestamp)
            for start in range(0, len(events), 500):
                await write_events(db, events[start:start + 500])
        finally:
            await db.dispose()

    # The browser fixtures own this thread's event loop: the generator gets a thread of its own.
    errors: list[BaseException] = []
    worker = threading.Thread(target=lambda: _capture(errors, lambda: asyncio.run(_write())))
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
    return len(events)


def _capture(errors: list[BaseException], fn) -> None:  # noqa: ANN001
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001
        errors.append(exc)


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def sql(live_server, statement: str, *args: object) -> None:  # noqa: ANN001
    db = sqlite3.connect(live_server.db_path, timeout=10)
    try:
        db.execute(statement, args)
        db.commit()
    finally:
        db.close()


def make_admin(live_server, page, username: str = "opsadmin") -> None:  # noqa: ANN001
    page.goto("/signup")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "correct horse battery")
    page.click("#signup-form button[type=submit]")
    page.wait_for_url(lambda url: "/signup" not in url)
    sql(live_server, "UPDATE users SET role = 'admin' WHERE username = ?", username)


def test_dashboard_and_creator_analytics_render_with_charts(browser, live_server, artifacts):  # noqa: ANN001
    written = simulate_traffic(live_server.settings)
    assert written > 300
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1360, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    make_admin(live_server, page)

    page.goto("/admin")
    page.wait_for_selector("svg.chart path.line")
    dau = int(page.inner_text("[data-metric=dau]"))
    assert 20 <= dau <= 41  # most simulated viewers (and the admin) were active in the last 24 hours
    assert page.inner_text("[data-metric=ctr]").endswith("%")
    assert page.locator("svg.chart").count() >= 6
    box = page.locator("svg.chart").first.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100  # charts are drawn at a readable size
    assert page.locator("#rankers").get_by_text("untrained prior").count() == 1
    page.screenshot(path=str(artifacts / "admin-dashboard.png"), full_page=True)

    creator = CATALOGUE[0][1]
    page.goto(f"/studio/analytics?creator={creator}")
    page.wait_for_selector("svg.chart path.line")
    assert int(page.inner_text("[data-metric=views]").replace("K", "")) > 0
    assert page.get_by_text("Audience retention").count() >= 1
    page.screenshot(path=str(artifacts / "creator-analytics.png"), full_page=True)

    page.goto(f"/studio/analytics/{CATALOGUE[0][0]}")
    page.wait_for_selector("svg.chart path.line")
    page.screenshot(path=str(artifacts / "video-analytics.png"), full_page=True)

    # An A/B test defined in the admin UI, back-dated so that the simulated day counts towards it.
    page.goto("/admin/experiments")
    page.fill("input[name=name]", "explore-more")
    page.fill("input[name=variant_1_overrides]", '{"explore_slots": 2, "mmr_lambda": 0.6}')
    page.click("text=Start experiment")
    page.wait_for_selector("text=is running")
    sql(live_server, "UPDATE experiments SET started_at = ?", _at(time.time() - 2 * DAY).strftime("%Y-%m-%d %H:%M:%S"))
    page.goto("/admin/experiments")
    page.wait_for_selector("[data-experiment=explore-more] svg.chart circle")
    page.screenshot(path=str(artifacts / "admin-experiments.png"), full_page=True)

    sql(live_server, "INSERT INTO reports (user_id, video_id, reason, details, status, created_at) "
                     "VALUES ('u_sim001', ?, 'spam', 'looks like an ad', 'open', ?)", CATALOGUE[2][0],
        _at(time.time()).strftime("%Y-%m-%d %H:%M:%S"))
    for path, name in (("/admin/moderation", "admin-moderation.png"), ("/settings", "settings.png")):
        page.goto(path)
        page.wait_for_load_state("load")
        page.screenshot(path=str(artifacts / name), full_page=True)
    assert errors == []
    context.close()
