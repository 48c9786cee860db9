"""Impressions of the random-exposure slice are logged with their propensity (off-policy evaluation reads it)."""

import dataclasses

from sqlalchemy import select

from app.db.models import Event
from tests.app.helpers import run, services
from tests.app.test_accounts import signup
from tests.app.test_interactions import add_ready, user_named

HTML = {"accept": "text/html"}


def test_random_slot_impressions_carry_source_and_propensity(client, settings):
    videos = {add_ready(client, creator=f"maker{i}", caption=f"clip {i}") for i in range(settings.feed_page_size + 2)}
    engine = services(client).recommender.engine
    everything_random = dataclasses.replace(engine.config, random_exposure_share=1.0)
    engine.config = engine._state.config = everything_random  # the slice at 100%, so every slot is random
    signup(client, username="viewer")  # its guest session is served a page first (the sign-up form's visit)
    viewer = user_named(client, "viewer")
    assert client.get("/", headers=HTML).status_code == 200

    async def _impressions() -> list[Event]:
        async with services(client).db.read() as session:
            return (await session.execute(select(Event).where(Event.event_type == "impression",
                                                              Event.user_id == viewer.id)
                                            .order_by(Event.id))).scalars().all()

    logged = run(client, _impressions())
    assert {e.video_id for e in logged} <= videos
    pages: dict[str, list[Event]] = {}
    for event in logged:
        pages.setdefault(event.additional_info["request_id"], []).append(event)
    first, second = pages.values()  # the guest's first page (before sign-up), the account's page
    assert len(first) == settings.feed_page_size
    assert {e.additional_info["source"] for e in first} == {"random"}
    assert {e.additional_info["propensity"] for e in first} == {1.0 / len(videos)}  # uniform over every video
    # the recommender's session already served six: two videos are eligible, each random slot drew one of them
    random = [e for e in second if e.additional_info["source"] == "random"]
    assert len(random) == 2 and {e.additional_info["propensity"] for e in random} == {0.5}
    assert all("propensity" not in e.additional_info for e in second if e not in random)
