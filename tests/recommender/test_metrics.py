"""Metrics against values computed by hand."""

import pytest

from recommender import metrics
from recommender.metrics import DAY

from .conftest import ev

D0 = 1_700_006_400.0  # a day boundary is irrelevant: windows are [start, start + 1 day)


def test_dau_counts_distinct_users_in_the_day():
    events = [ev("a", "view", D0 + 10, "v1"), ev("a", "like", D0 + 20, "v1"), ev("b", "view", D0 + 100, "v2"),
              ev("c", "view", D0 + DAY + 5, "v1")]
    assert metrics.daily_active_users(events, D0) == 2
    assert metrics.daily_active_users(events, D0 + DAY) == 1


def test_retention_d1_and_d7():
    # Day 0: a, b, c, d. Day 1: a, b. Day 7: a.
    events = [ev(u, "view", D0 + 60, "v") for u in "abcd"]
    events += [ev("a", "view", D0 + DAY + 60, "v"), ev("b", "view", D0 + DAY + 90, "v"),
               ev("e", "view", D0 + DAY + 90, "v"), ev("a", "view", D0 + 7 * DAY + 5, "v")]
    assert metrics.retention(events, D0, 1) == pytest.approx(2 / 4)
    assert metrics.retention(events, D0, 7) == pytest.approx(1 / 4)
    assert metrics.retention(events, D0 - 5 * DAY, 1) is None


def test_average_session_length_splits_at_thirty_minutes():
    # user a: 0, 60, 120 (one session, 120 s); then 120 + 1801 starts a new one-event session (0 s).
    # user b: 0, 300 (300 s).  Mean = (120 + 0 + 300) / 3 = 140.
    events = [ev("a", "view", D0 + t, "v") for t in (0, 60, 120, 120 + 1801)]
    events += [ev("b", "view", D0 + t, "v") for t in (0, 300)]
    assert metrics.average_session_length(events) == pytest.approx(140.0)


def test_ctr_engagement_and_skip_rate():
    events = [
        ev("a", "impression", D0, "v1"), ev("a", "view", D0 + 1, "v1", watch_duration=10),
        ev("a", "like", D0 + 2, "v1"),
        ev("a", "impression", D0 + 3, "v2"), ev("a", "skip", D0 + 4, "v2"),
        ev("b", "impression", D0 + 5, "v1"), ev("b", "view", D0 + 6, "v1", watch_duration=3),
        ev("b", "impression", D0 + 7, "v3"),
        ev("b", "share", D0 + 8, "v1"), ev("b", "comment", D0 + 9, "v1"),
    ]
    # 4 impressed pairs, 2 viewed -> CTR 0.5; 3 engagements over 2 views -> 1.5; 1 of 4 exposed pairs skipped.
    assert metrics.click_through_rate(events) == pytest.approx(0.5)
    assert metrics.engagement_rate(events) == pytest.approx(1.5)
    assert metrics.skip_rate(events) == pytest.approx(0.25)


def test_rates_are_zero_without_denominators():
    assert metrics.click_through_rate([]) == 0.0
    assert metrics.engagement_rate([ev("a", "like", D0, "v")]) == 0.0
    assert metrics.skip_rate([]) == 0.0


def test_snapshot_covers_the_day_ending_now():
    events = [ev("a", "impression", D0, "v1"), ev("a", "view", D0 + 1, "v1", watch_duration=10),
              ev("z", "view", D0 - 2 * DAY, "v1")]
    snap = metrics.snapshot(events, D0 + DAY)
    assert snap["dau"] == 1 and snap["ctr"] == 1.0 and snap["events"] == 2
    assert snap["retention_d1"] is None  # nobody active the day before
