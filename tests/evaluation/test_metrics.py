"""Every metric against values computed by hand on tiny inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recommender.evaluation.metrics import (
    Relevant,
    auc,
    make_coverage,
    make_ild,
    make_novelty,
    ndcg,
    precision,
    recall,
)


def test_ndcg_by_hand():
    # hits at ranks 2 and 3 (1-based); 3 relevant -> ideal has hits at 1, 2, 3
    truth = {"u": {"a", "b", "z"}}
    preds = {"u": ["x", "a", "b", "y"]}
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg(truth, preds, 4) == pytest.approx(dcg / idcg)
    # k=2: only the hit at rank 2 counts; ideal over min(3, 2) = 2 positions
    assert ndcg(truth, preds, 2) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))


def test_ndcg_perfect_and_empty():
    assert ndcg({"u": {"a"}}, {"u": ["a", "b"]}, 10) == pytest.approx(1.0)
    assert ndcg({"u": {"a"}}, {"u": []}, 10) == 0.0
    assert ndcg({"u": {"a"}}, {}, 10) == 0.0  # a user without predictions scores zero


def test_recall_and_precision_by_hand():
    truth = {"u": {"a", "b", "c", "d"}, "v": {"q"}}
    preds = {"u": ["a", "x", "b", "y", "z"], "v": ["q", "r"]}
    # u: 2 of 4 relevant in top 5; v: 1 of 1
    assert recall(truth, preds, 5) == pytest.approx((2 / 4 + 1 / 1) / 2)
    # precision@2: u has 1 hit of 2, v has 1 hit of 2
    assert precision(truth, preds, 2) == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert recall.per_user(truth, preds, 1).tolist() == [0.25, 1.0]


def test_auc_by_hand():
    # universe of 5 items; relevant {a, c}; list [a, b, c]; d, e unranked (tied below)
    truth = {"u": Relevant({"a", "c"}, universe=5)}
    # negatives: b, d, e (3). a beats all 3; c beats d, e (2) -> 5 / (2 * 3)
    assert auc(truth, {"u": ["a", "b", "c"]}, 3) == pytest.approx(5 / 6)
    # truncating to k=1: a beats 3; c is tied with b, d, e -> 0.5 * 3
    assert auc(truth, {"u": ["a", "b", "c"]}, 1) == pytest.approx((3 + 1.5) / 6)
    # nothing ranked: everything tied -> 0.5
    assert auc(truth, {"u": []}, 3) == pytest.approx(0.5)
    # worst ranking: negatives first, positives last among all 5
    assert auc(truth, {"u": ["b", "d", "e", "a", "c"]}, 5) == pytest.approx(0.0)


def test_auc_without_universe_uses_list_and_truth():
    assert auc({"u": {"a"}}, {"u": ["b", "a", "c"]}, 3) == pytest.approx(1 / 2)


def test_coverage_by_hand():
    coverage = make_coverage(["a", "b", "c", "d", "e"])
    truth = {"u": {"a"}, "v": {"b"}}
    preds = {"u": ["a", "b", "x"], "v": ["b", "c"]}  # x is not in the catalogue
    assert coverage(truth, preds, 2) == pytest.approx(3 / 5)  # {a, b} U {b, c}
    assert coverage(truth, preds, 1) == pytest.approx(2 / 5)  # {a} U {b}


def test_ild_by_hand():
    vectors = {"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0]), "c": np.array([1.0, 1.0])}
    ild = make_ild(vectors)
    # pairs: (a,b) cos 0 -> 1; (a,c) cos 1/sqrt2; (b,c) cos 1/sqrt2
    expected = 1 - (0 + 2 / math.sqrt(2)) / 3
    assert ild({"u": {"a"}}, {"u": ["a", "b", "c"]}, 3) == pytest.approx(expected)
    assert ild({"u": {"a"}}, {"u": ["a", "b", "c"]}, 2) == pytest.approx(1.0)
    assert ild({"u": {"a"}}, {"u": ["a"]}, 3) == 0.0


def test_novelty_by_hand():
    novelty = make_novelty({"a": 8, "b": 2}, n_users=8)
    # a: -log2(8/8) = 0; b: -log2(2/8) = 2; unseen c counts as 1 user: -log2(1/8) = 3
    assert novelty({"u": {"a"}}, {"u": ["a", "b"]}, 2) == pytest.approx(1.0)
    assert novelty({"u": {"a"}}, {"u": ["c"]}, 2) == pytest.approx(3.0)


def test_uniform_signature_and_per_user_alignment():
    truth = {"u": {"a"}, "v": {"b"}}
    preds = {"u": ["a"], "v": ["x"]}
    for metric in (ndcg, recall, precision, auc, make_ild({"a": np.ones(2)}), make_novelty({"a": 1}, 1)):
        value = metric(truth, preds, 1)
        per_user = metric.per_user(truth, preds, 1)
        assert per_user.shape == (2,)
        assert value == pytest.approx(per_user.mean())
    assert ndcg.per_user(truth, preds, 1).tolist() == [1.0, 0.0]
