"""A/B tests: validation, deterministic balanced assignment, the statistics, and the admin flow end to end."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
from sqlalchemy import select

from app.db.models import Event
from app.domain.experiments import stats
from app.domain.experiments.service import (
    ExperimentError,
    assign,
    experiment_results,
    list_experiments,
    validate_overrides,
    validate_variants,
    variant_results,
)
from tests.app.helpers import add_video, run, services
from tests.app.test_admin import admin_client, make_viewer, post_form  # noqa: F401 (fixture)


def test_overrides_are_validated_against_the_recommender_config():
    assert validate_overrides({"explore_slots": 2, "mmr_lambda": 0.5, "value_weights.like": 2}) == {
        "explore_slots": 2, "mmr_lambda": 0.5, "value_weights.like": 2.0}
    assert validate_overrides({"explore_slots": 3.0}) == {"explore_slots": 3}
    for bad in ({"no_such_setting": 1}, {"explore_slots": "two"}, {"explore_slots": 1.5},
                {"value_weights.nope": 1.0}, {"mmr_lambda.x": 1.0}, {"explore_slots": True}):
        with pytest.raises(ExperimentError):
            validate_overrides(bad)
    with pytest.raises(ExperimentError):
        validate_variants([{"name": "only", "overrides": {}}])
    with pytest.raises(ExperimentError):
        validate_variants([{"name": "a"}, {"name": "a"}])


def test_assignment_is_deterministic_and_balanced_on_10000_users():
    variants = [{"name": "control", "weight": 1}, {"name": "treatment", "weight": 1}]
    users = [f"u_{i:05d}" for i in range(10_000)]
    first = [assign(u, "salt-1", variants) for u in users]
    assert first == [assign(u, "salt-1", variants) for u in users]  # same user, same variant, every time
    counts = Counter(first)
    assert abs(counts["control"] / 10_000 - 0.5) < 0.02  # 4 standard deviations of a fair split
    weighted = Counter(assign(u, "salt-2", [{"name": "a", "weight": 2}, {"name": "b", "weight": 1},
                                           {"name": "c", "weight": 1}]) for u in users)
    assert abs(weighted["a"] / 10_000 - 0.5) < 0.02 and abs(weighted["b"] / 10_000 - 0.25) < 0.02
    # Another salt reshuffles: about half the users change group between independent experiments.
    moved = sum(a != b for a, b in zip(first, (assign(u, "salt-3", variants) for u in users), strict=True))
    assert 0.45 < moved / 10_000 < 0.55


def test_significance_tests_match_known_cases():
    # Welch's t-test, the first worked example on Wikipedia's "Welch's t-test" page.
    a1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
    a2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
    result = stats.welch_t_test(a1, a2)
    assert result.statistic == pytest.approx(-2.46, abs=0.01)
    assert result.df == pytest.approx(24.99, abs=0.01)
    assert result.p_value == pytest.approx(0.021, abs=0.001)
    assert result.significant
    # Two-proportion z-test: 120/1000 vs 150/1000, pooled p = 0.135, z = -0.03 / sqrt(.135·.865·.002).
    z = stats.two_proportion_z_test(120, 1000, 150, 1000)
    assert z.statistic == pytest.approx(-1.9628, abs=1e-3)
    assert z.p_value == pytest.approx(0.0497, abs=1e-3)
    assert not stats.two_proportion_z_test(50, 100, 52, 100).significant
    assert stats.t_quantile(0.975, 10) == pytest.approx(2.228, abs=1e-3)
    ci = stats.mean_ci([1, 2, 3, 4, 5])
    assert (ci.low, ci.high) == pytest.approx((3 - 2.776 * 1.5811 / 5 ** 0.5, 3 + 2.776 * 1.5811 / 5 ** 0.5),
                                              abs=1e-3)
    wilson = stats.proportion_ci(0, 10)
    assert wilson.low == 0 and 0.25 < wilson.high < 0.32


def test_variant_results_attribute_events_by_assignment():
    from app.db.admin_models import Experiment
    from app.domain.analytics.service import Row

    experiment = Experiment(name="e", salt="s", variants=[{"name": "control", "weight": 1, "overrides": {}},
                                                          {"name": "treatment", "weight": 1, "overrides": {}}])
    users = [f"u{i}" for i in range(40)]
    now = 10 * 86_400.0
    rows = []
    for i, user in enumerate(users):
        group = assign(user, "s", experiment.variants)
        watch = 20.0 if group == "treatment" else 10.0
        rows += [Row("impression", user, f"v{i}", "c", now - 100, None, {}),
                 Row("view", user, f"v{i}", "c", now - 90, watch, {}),
                 Row("impression", user, f"w{i}", "c", now - 80, None, {}),
                 Row("skip", user, f"w{i}", "c", now - 70, None, {})]
    results = {r.name: r for r in variant_results(experiment, rows, now)}
    assert results["control"].users + results["treatment"].users == 40
    assert results["control"].watch_per_session.mean == pytest.approx(10.0)
    assert results["treatment"].watch_per_session.mean == pytest.approx(20.0)
    assert results["treatment"].skip_rate.mean == pytest.approx(0.5)
    assert results["treatment"].vs_control["skip_rate"].p_value == pytest.approx(1.0)


def test_admin_runs_an_experiment_and_promotes_a_variant(admin_client):  # noqa: ANN001, F811
    client = admin_client
    for i in range(4):
        add_video(client, creator=f"maker{i}", caption=f"clip {i}", topic=f"t{i}")
    run(client, services(client).recommender.bootstrap())
    bad = post_form(client, "/admin/experiments", name="oops", variant_0_name="control", variant_1_name="b",
                    variant_1_overrides='{"explore_slotz": 2}')
    assert "Unknown recommender setting" in client.get(bad.headers["location"]).text
    made = post_form(client, "/admin/experiments", name="explore-more", description="more exploration",
                     variant_0_name="control", variant_0_weight="1", variant_0_overrides="{}",
                     variant_1_name="treatment", variant_1_weight="1",
                     variant_1_overrides=json.dumps({"explore_slots": 2, "value_weights.like": 1.5}))
    assert "is running" in client.get(made.headers["location"]).text
    experiment = run(client, list_experiments(services(client).db))[0]

    viewers = [make_viewer(client, f"viewer{i}") for i in range(6)]
    for viewer in viewers:
        run(client, services(client).feed.next_page(viewer, f"s-{viewer.id}", "foryou"))
    engine = services(client).recommender.engine
    for viewer in viewers:
        variant = assign(viewer.id, experiment.salt, experiment.variants)
        trace = engine.inspect_user(viewer.id)["last_recommendation"]
        expected = {"explore_slots": 2, "value_weights.like": 1.5} if variant == "treatment" else {}
        assert trace["overrides"] == expected

    async def impressions() -> list[Event]:
        async with services(client).db.read() as session:
            return list((await session.execute(select(Event).where(Event.event_type == "impression"))).scalars())

    rows = run(client, impressions())
    assert rows and all(r.additional_info["experiment"] == "explore-more" for r in rows)
    assert all(r.additional_info["variant"] == assign(r.user_id, experiment.salt, experiment.variants) for r in rows)

    page = client.get("/admin/experiments").text
    assert 'data-experiment="explore-more"' in page and "Watch time per session" in page and "<svg" in page
    results = run(client, experiment_results(services(client).db, experiment, time.time()))
    assert sum(r.users for r in results) == 6 and sum(r.impressions for r in results) == len(rows)

    done = post_form(client, f"/admin/experiments/{experiment.id}/stop", promote="treatment")
    assert "is now everyone" in client.get(done.headers["location"]).text
    for viewer in viewers:  # every user, whatever their group was, now gets the promoted settings
        run(client, services(client).feed.next_page(viewer, f"s2-{viewer.id}", "foryou"))
        assert engine.inspect_user(viewer.id)["last_recommendation"]["overrides"] == {
            "explore_slots": 2, "value_weights.like": 1.5}
    reset = post_form(client, "/admin/experiments/defaults/reset")
    assert reset.status_code == 303
    run(client, services(client).feed.next_page(viewers[0], "s3", "foryou"))
    assert engine.inspect_user(viewers[0].id)["last_recommendation"]["overrides"] == {}
