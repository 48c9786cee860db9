"""Issue 11 acceptance through the app: after a day's volume of traffic through the feed service (impressions
logged as the feed page logs them, reactions as the beacon and the like button record them), the training
job trains a neural candidate on those cards, gates it against the prior, and the operator dashboard lists it
with its held-out figures and the version that serves.

The simulated day has a preference structure the hand-set prior cannot express: each viewer watches videos of
one favourite topic, except that a third of every topic's videos are duds that even its fans skip. The prior
ranks by topic affinity first and item rates second, so it keeps serving a fan the duds of their topic; only a
model fitted to the day's cards learns how much a poor skip record outweighs a topic match. (On a day where
topic is everything, the prior is already exact after a viewer's first page and nothing can beat it.)
Viewers come back in turns over the day, page by page, so the held-out cards (the newest fifth) are the last
pages of most viewers. Reactions depend only on the viewer and the video, never on the clock or a random draw.
"""

from __future__ import annotations

import re
import time
import uuid

from sqlalchemy import select

from app.db.models import User, Video
from app.domain.events.writer import EventIn
from tests.app.helpers import run, services
from tests.app.test_admin import ADMIN, admin_client, quick_model_status  # noqa: F401 - fixtures
from tests.app.test_feed_adapts import TOPICS, build_catalogue

VIEWERS = 24
PAGES_PER_VIEWER = 4  # 24 × 4 × 10 = 960 served cards: what a demo instance sees in a day, roughly
# The candidate must remove this share of the prior's held-out AUC shortfall (1 - AUC, mean over tasks); the prior
# ranks 0.94-0.98 here, so a fixed gain would ask for less or for the impossible. Eleven runs: 0.41 to 0.97.
MIN_SHORTFALL_REMOVED = 0.25
PER_TOPIC = 30  # videos per topic: a viewer's four pages never run out of their topic


def simulate_day(client) -> dict[str, str]:  # noqa: ANN001
    """Serve every viewer PAGES_PER_VIEWER pages of ten cards (in turns) and record their reactions."""
    svc = services(client)
    topic_of = build_catalogue(client, per_topic=PER_TOPIC)

    async def _setup() -> tuple[list[User], dict[str, int]]:
        async with svc.db.write() as session:
            users = [User(id=f"u_v{i}", username=f"viewer{i}", is_guest=False) for i in range(VIEWERS)]
            session.add_all(users)
        async with svc.db.read() as session:
            rows = (await session.execute(select(Video.id, Video.caption))).all()
        return users, {video_id: int(caption.split()[2]) for video_id, caption in rows}  # "<topic> video <i> …"

    viewers, index_of = run(client, _setup())
    for _turn in range(PAGES_PER_VIEWER):
        for number, viewer in enumerate(viewers):
            favourite = TOPICS[number % len(TOPICS)]
            cards = run(client, svc.feed.next_page(viewer, f"s-{viewer.id}", "foryou", k=10))
            reactions = []
            for card in cards:
                video = card.video.id
                watched_through = topic_of[video] == favourite and index_of[video] % 3 != 0  # a third are duds
                reactions.append(EventIn(event_id=uuid.uuid4().hex, event_type="view", user_id=viewer.id,
                                         video_id=video, watch_duration=10.0 if watched_through else 1.0,
                                         additional_info={"final": True}))
                if watched_through:
                    reactions.append(EventIn(event_id=uuid.uuid4().hex, event_type="complete_view",
                                             user_id=viewer.id, video_id=video))
                    if number % 2 == 0:  # half the viewers like what they watch through
                        reactions.append(EventIn(event_id=uuid.uuid4().hex, event_type="like", user_id=viewer.id,
                                                 video_id=video, creator_id=card.video.creator_id))
                else:
                    reactions.append(EventIn(event_id=uuid.uuid4().hex, event_type="skip", user_id=viewer.id,
                                             video_id=video, watch_duration=1.0))
            run(client, svc.events.submit(reactions))
    return topic_of


def test_a_day_of_traffic_trains_and_promotes_a_ranker_shown_on_the_dashboard(admin_client):  # noqa: F811
    client = admin_client
    simulate_day(client)
    engine = services(client).recommender.engine
    assert engine.ranker_versions()[-1]["note"] == "untrained prior"
    # The day is over: the job runs an hour later, when every session has ended (30 minutes idle).
    summary = engine.run_job("ranker_training", time.time() + 3600)
    assert summary["new_examples"] >= VIEWERS * PAGES_PER_VIEWER * 10 * 0.9, summary
    print("ranker after a day:",
          {k: summary[k] for k in ("note", "candidate", "prior", "ndcg_paired", "n_train", "n_holdout")})
    print("per task (AUC, log loss) prior -> candidate:", {
        task: (int(f["candidate"]["positives"]), f"{(f['prior']['auc'] or 0):.3f}->{(f['candidate']['auc'] or 0):.3f}",
               f"{f['prior']['log_loss']:.3f}->{f['candidate']['log_loss']:.3f}")
        for task, f in summary["per_task"].items() if f["candidate"]["auc"] is not None})
    assert summary["promoted"], summary
    prior_auc = summary["prior"]["auc"]
    assert summary["candidate"]["auc"] - prior_auc >= MIN_SHORTFALL_REMOVED * (1.0 - prior_auc), summary
    assert summary["candidate"]["log_loss"] < summary["prior"]["log_loss"], summary
    assert not summary["training"]["out_of_time"]

    html = client.get("/admin").text
    rankers = html[html.index('id="rankers"'):]
    rankers = rankers[: rankers.index("</section>")]
    assert re.search(r"v1\s*<span[^>]*>← v0</span><br><span[^>]*>promoted</span>", rankers), rankers[:800]
    rows = {re.match(r"\s*<td>v(\d+)", row).group(1): row for row in rankers.split("<tr>")[2:]}
    assert '<span class="pill active">active</span>' in rows["1"]
    assert '<span class="pill retired">retired</span>' in rows["0"]
    assert "mlp 256-128-64" in rankers
    assert f"{summary['candidate']['auc']:.4f}" in rankers and f"{summary['prior']['auc']:.4f}" in rankers
