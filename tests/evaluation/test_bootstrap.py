from __future__ import annotations

import numpy as np
import pytest

from recommender.evaluation.bootstrap import (
    bootstrap_indices,
    mean_with_interval,
    metric_with_interval,
    paired_difference,
)
from recommender.evaluation.metrics import make_coverage, ndcg


def _truth_preds(n: int = 50):
    truth = {f"u{i}": {f"i{i}"} for i in range(n)}
    good = {f"u{i}": [f"i{i}", "x"] for i in range(n)}  # hit at rank 1 for everyone
    half = {f"u{i}": ([f"i{i}"] if i % 2 else ["x"]) for i in range(n)}  # hit for odd users only
    return truth, good, half


def test_indices_are_reproducible():
    assert np.array_equal(bootstrap_indices(10, 5, seed=3), bootstrap_indices(10, 5, seed=3))


def test_interval_contains_point_and_is_deterministic():
    truth, _, half = _truth_preds()
    a = metric_with_interval(ndcg, truth, half, 10, n_boot=300, seed=1)
    b = metric_with_interval(ndcg, truth, half, 10, n_boot=300, seed=1)
    assert a == b
    assert a["value"] == pytest.approx(0.5)
    assert a["ci"][0] < 0.5 < a["ci"][1]


def test_paired_difference_identical_is_zero():
    truth, good, _ = _truth_preds()
    d = paired_difference(ndcg, truth, good, good, 10, n_boot=200)
    assert d["diff"] == 0.0 and d["ci"] == [0.0, 0.0]


def test_paired_difference_detects_a_better_method():
    truth, good, half = _truth_preds()
    d = paired_difference(ndcg, truth, good, half, 10, n_boot=500)
    assert d["diff"] == pytest.approx(0.5)
    assert d["ci"][0] > 0  # lower bound above zero
    assert d["p_better"] == 1.0


def test_non_decomposable_metric_is_bootstrapped_by_recomputation():
    truth, good, half = _truth_preds(20)
    coverage = make_coverage([f"i{i}" for i in range(20)])
    res = metric_with_interval(coverage, truth, good, 1, n_boot=200)
    assert res["value"] == pytest.approx(1.0)
    assert res["ci"][1] <= 1.0  # resampled users cover at most the catalogue
    d = paired_difference(coverage, truth, good, half, 1, n_boot=200)
    assert d["diff"] == pytest.approx(1.0 - 10 / 20)


def test_mean_with_interval():
    res = mean_with_interval([1.0, 2.0, 3.0], n_boot=100)
    assert res["value"] == pytest.approx(2.0)
    assert 1.0 <= res["ci"][0] <= 2.0 <= res["ci"][1] <= 3.0


def test_set_level_metric_interval_contains_its_value():
    """Coverage over resampled users is biased low (repeats mean fewer distinct users); the interval is
    re-centred, so it holds the point estimate."""
    from recommender.evaluation.bootstrap import metric_with_interval
    from recommender.evaluation.metrics import make_coverage

    items = [f"i{n}" for n in range(200)]
    truth = {f"u{n}": {items[n]} for n in range(60)}
    predictions = {f"u{n}": items[n: n + 10] for n in range(60)}
    result = metric_with_interval(make_coverage(items), truth, predictions, 10, n_boot=200)
    low, high = result["ci"]
    assert low <= result["value"] <= high
