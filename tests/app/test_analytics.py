"""Analytics on a small hand-made event log, compared with figures worked out by hand."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime

import pytest

from app.domain.analytics import metrics as am
from app.domain.analytics.service import creator_report, platform_overview
from app.domain.events.writer import EventIn
from tests.app.helpers import add_video, run, services
from tests.app.test_accounts import signup

pytestmark = pytest.mark.both_databases

DAY = 86_400.0
_ids = itertools.count()


def ev(kind: str, user: str, video: str | None, at: float, creator: str | None = None, watch: float | None = None,
       **info) -> EventIn:  # noqa: ANN003
    return EventIn(event_id=f"t{next(_ids)}-{kind}", event_type=kind, user_id=f"u_{user}", video_id=video,
                   creator_id=creator, watch_duration=watch, timestamp=datetime.fromtimestamp(at, UTC),
                   additional_info=info)


def make_users(client, *names: str) -> None:  # noqa: ANN001
    from app.db.models import User

    async def _add() -> None:
        async with services(client).db.write() as session:
            for name in names:
                session.add(User(id=f"u_{name}", username=name, is_guest=False))

    run(client, _add())


@pytest.fixture
def traffic(client):  # noqa: ANN001, ANN201
    """Three viewers (a, b, c), three creators (x: v1; y: v2, v3; z: v4 never shown). ``now`` is N.

    Yesterday (N-2d..N-1d): a and b. Today (N-1d..N): a (two sessions) and c. Eight days ago: a.
    """
    now = time.time()
    make_users(client, "a", "b", "c")
    v1 = add_video(client, creator="x", duration=10.0, caption="one #cats", hashtags=["cats"], topic="pets")
    v2 = add_video(client, creator="y", duration=20.0, caption="two", topic="food")
    v3 = add_video(client, creator="y", duration=20.0, caption="three", topic="food")
    add_video(client, creator="z", duration=15.0, caption="four", topic="art")
    x, y = "u_x", "u_y"
    events = [
        ev("view", "a", v1, now - 7.5 * DAY, x, 3.0, source="ann/long_term", feed="foryou"),
        ev("impression", "b", v1, now - 1.5 * DAY, x, source="popular", feed="foryou"),
        ev("view", "b", v1, now - 1.5 * DAY + 5, x, 10.0, source="popular", feed="foryou"),
        ev("impression", "a", v2, now - 1.4 * DAY, y, source="popular", feed="foryou"),
        # today, a, session 1 (110 s)
        ev("impression", "a", v1, now - 3600, x, source="trending", feed="foryou"),
        ev("view", "a", v1, now - 3590, x, 8.0, source="trending", feed="foryou"),
        ev("impression", "a", v2, now - 3500, y, source="following", feed="following"),
        ev("skip", "a", v2, now - 3490, y),
        # today, a, session 2 (10 s)
        ev("impression", "a", v3, now - 600, y, source="fresh", feed="foryou"),
        ev("view", "a", v3, now - 590, y, 10.0, source="profile"),
        # today, c (100 s)
        ev("impression", "c", v1, now - 1000, x, source="popular", feed="foryou"),
        ev("view", "c", v1, now - 990, x, 4.0, source="permalink"),
        ev("like", "c", v1, now - 900, x),
    ]
    run(client, services(client).events.submit(events))
    return {"now": now, "v1": v1, "v2": v2, "v3": v3}


def test_dashboard_metrics_match_hand_computed_values(client, traffic):  # noqa: ANN001
    overview = run(client, platform_overview(services(client).db, traffic["now"]))
    snap = overview.snapshot
    assert snap["dau"] == 2  # a and c
    assert snap["retention_d1"] == pytest.approx(0.5)  # yesterday {a, b}, back today {a}
    assert snap["retention_d7"] == pytest.approx(1.0)  # eight days ago {a}, a is back today
    assert snap["sessions"] == 3
    assert snap["average_session_seconds"] == pytest.approx((110 + 10 + 100) / 3)
    assert snap["ctr"] == pytest.approx(3 / 4)  # impressed (a,v1) (a,v2) (a,v3) (c,v1); viewed all but (a,v2)
    assert snap["skip_rate"] == pytest.approx(1 / 4)
    assert snap["engagement_rate"] == pytest.approx(1 / 3)  # one like per three views
    assert overview.videos_per_session == pytest.approx(1.0)
    # Impressions over 7 days per creator with published videos: x 3 (a, b, c), y 3 (a twice + a), z 0.
    assert overview.exposure_gini == pytest.approx(am.gini([3, 3, 0]))
    assert overview.exposure_gini == pytest.approx(1 / 3)
    assert overview.coverage == pytest.approx(3 / 4)
    assert overview.dau[-1] >= 1 and len(overview.days) == 14


def test_creator_and_video_report_match_hand_computed_values(client, traffic):  # noqa: ANN001
    from app.db.models import User

    async def creator(uid: str) -> User:
        async with services(client).db.read() as session:
            return await session.get(User, uid)

    db = services(client).db
    x = run(client, creator("u_x"))
    report = run(client, creator_report(db, x, traffic["now"], 28, video_id=traffic["v1"]))
    t = report.totals
    assert (t.views, t.unique_viewers, t.impressions, t.likes) == (4, 3, 3, 1)  # views by a (twice), b, c
    watched = [3.0, 10.0, 8.0, 4.0]
    assert t.mean_watch == pytest.approx(sum(watched) / 4)
    assert t.mean_ratio == pytest.approx(sum(w / 10 for w in watched) / 4)
    assert t.completion == pytest.approx(1 / 4)
    # Retention at 0..10 s: everyone at 0; ≥1..3 s all four; 4 s three (3 dropped); 5..8 s two; 9..10 s one.
    assert report.retention == pytest.approx([1, 1, 1, 1, .75, .5, .5, .5, .5, .25, .25])
    assert report.traffic == {"For You": 3, "Share link": 1}

    y = run(client, creator("u_y"))
    overview = run(client, creator_report(db, y, traffic["now"], 28))
    assert overview.totals.views == 1 and overview.totals.impressions == 3
    assert overview.traffic == {"Profile": 1}
    assert overview.impression_traffic == {"For You": 2, "Following": 1}
    assert overview.retention[0] == 1.0 and overview.retention[-1] == 0.0  # 10 s of a 20 s video: half way


def test_pure_metric_functions():
    assert am.retention_curve([8, 4, 10], 10) == pytest.approx([1, 1, 1, 1, 1, 2 / 3, 2 / 3, 2 / 3, 2 / 3, 1 / 3,
                                                                1 / 3])
    assert am.completion_rate([9.6, 5, 10], 10) == pytest.approx(2 / 3)
    assert am.gini([1, 1, 1, 1]) == 0
    assert am.gini([0, 0, 0, 1]) == pytest.approx(0.75)
    assert am.gini([0, 2, 3]) == pytest.approx(0.4)  # mean absolute difference 2·(2+3+1)/9 over twice the mean 10/3
    assert am.gini([]) == 0
    assert am.lorenz_curve([1, 3]) == [(0, 0), (0.5, 0.25), (1.0, 1.0)]
    assert am.traffic_source({"feed": "following", "source": "following"}) == "Following"
    assert am.traffic_source({"source": "search"}) == "Search"
    assert am.traffic_source({"source": "permalink"}) == "Share link"
    assert am.traffic_source({"source": "ann/short_term", "feed": "foryou"}) == "For You"
    assert am.normalised_entropy([5, 5]) == pytest.approx(1.0)


def test_creator_analytics_pages_render_with_charts(client, traffic):  # noqa: ANN001
    signup(client, username="creatorx")
    page = client.get("/studio/analytics", headers={"accept": "text/html"})
    assert page.status_code == 200 and page.text.count("<svg") >= 4
    # Someone else's video is not theirs to see.
    assert client.get(f"/studio/analytics/{traffic['v1']}").status_code == 404
    mine = video_of(client, "creatorx", duration=6.0, caption="mine")
    page = client.get(f"/studio/analytics/{mine}?days=7")
    assert page.status_code == 200 and "Audience retention" in page.text and "<svg" in page.text


def video_of(client, username: str, **fields) -> str:  # noqa: ANN001, ANN003
    """A ready video owned by an account made through sign-up."""
    from sqlalchemy import select

    from app.db.models import User, Video

    async def _add() -> str:
        async with services(client).db.write() as session:
            user = (await session.execute(select(User).where(User.username == username))).scalar_one()
            video = Video(creator_id=user.id, state=fields.pop("state", "ready"), **fields)
            session.add(video)
            await session.flush()
            return video.id

    return run(client, _add())
