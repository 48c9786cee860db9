"""The compiled fusion forest scores exactly what LightGBM's own predict scores, and falls back where it cannot."""

from __future__ import annotations

import pickle

import lightgbm
import numpy as np
import pytest

from recommender.compiled_trees import compile_forest
from recommender.fusion import FusionModel


def _rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    X = rng.normal(size=(n, d))
    X[rng.random((n, d)) < 0.1] = np.nan
    X[rng.random((n, d)) < 0.1] = 0.0
    X[rng.random((n, d)) < 0.02] = 1e-36  # LightGBM reads values this close to zero as zero
    X[rng.random((n, d)) < 0.02] = -0.0
    return X


def _booster(objective: str, **extra) -> lightgbm.Booster:
    rng = np.random.default_rng(1)
    n, d = 3_000, 12
    X = _rows(rng, n, d)
    signal = np.nan_to_num(X[:, 0]) - 0.7 * np.nan_to_num(X[:, 1]) + np.isnan(X[:, 2]) + (X[:, 3] == 0)
    y = (signal + rng.normal(scale=0.5, size=n) > 0.5).astype(float)
    params = {"objective": objective, "num_leaves": 15, "learning_rate": 0.1, "num_threads": 1, "verbose": -1,
              "deterministic": True, "force_row_wise": True, "seed": 0, "min_data_in_leaf": 10, **extra}
    group = [30] * (n // 30) if objective == "lambdarank" else None
    return lightgbm.train(params, lightgbm.Dataset(X, label=y, group=group), num_boost_round=40)


@pytest.mark.parametrize(("objective", "extra", "expected_missing"), [
    ("binary", {}, "NaN"),
    ("binary", {"zero_as_missing": True}, "Zero"),  # default side for zeros
    ("binary", {"use_missing": False}, "None"),  # NaN reads as zero
    ("lambdarank", {}, "NaN"),
])
def test_compiled_scores_equal_lightgbm_bit_for_bit(objective, extra, expected_missing):
    booster = _booster(objective, **extra)
    missing = {node["missing_type"] for tree in booster.dump_model()["tree_info"]
               for node in _splits(tree["tree_structure"])}
    assert expected_missing in missing
    model = FusionModel(booster)
    assert model.compile() and model.compiled is not None
    F = _rows(np.random.default_rng(7), 700, 12)
    np.testing.assert_array_equal(model.log_odds(F), booster.predict(F, num_threads=1, raw_score=True))
    np.testing.assert_allclose(model.score(F), booster.predict(F, num_threads=1), rtol=1e-12, atol=0)
    assert model.log_odds(F[:0]).shape == (0,)


def _splits(node):
    if "leaf_value" in node:
        return []
    return [node, *_splits(node["left_child"]), *_splits(node["right_child"])]


def test_a_pickled_model_compiles_again_on_load_and_scores_the_same():
    model = FusionModel(_booster("binary"))
    model.compile()
    restored = pickle.loads(pickle.dumps(model))
    assert restored.compiled is not None and restored.compiled is not model.compiled
    F = _rows(np.random.default_rng(3), 50, 12)
    np.testing.assert_array_equal(restored.log_odds(F), model.log_odds(F))
    assert pickle.loads(pickle.dumps(FusionModel(model.booster))).compiled is None


def test_categorical_splits_are_not_compiled_and_lightgbm_keeps_serving(caplog):
    rng = np.random.default_rng(2)
    X = np.column_stack([rng.integers(0, 8, 2_000), rng.normal(size=2_000)]).astype(float)
    y = (np.isin(X[:, 0], [1, 5, 6]) ^ (X[:, 1] > 1)).astype(float)
    booster = lightgbm.train({"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_per_group": 5,
                              "cat_smooth": 1}, lightgbm.Dataset(X, label=y, categorical_feature=[0]),
                             num_boost_round=10)
    assert compile_forest(booster) is None and "categorical" in caplog.text
    model = FusionModel(booster)
    assert not model.compile()
    np.testing.assert_array_equal(model.score(X[:20]), booster.predict(X[:20], num_threads=1))


def test_rows_of_the_wrong_width_are_refused():
    compiled = compile_forest(_booster("binary"))
    with pytest.raises(ValueError, match="12 features"):
        compiled.raw(np.zeros((3, 11)))


def test_trees_of_more_than_64_leaves_keep_lightgbm(caplog):
    booster = _booster("binary", num_leaves=80, min_data_in_leaf=2)
    assert max(tree["num_leaves"] for tree in booster.dump_model()["tree_info"]) > 64
    assert compile_forest(booster) is None and "leaves" in caplog.text


def test_forests_compiled_from_several_threads_at_once_are_each_exact():
    from concurrent.futures import ThreadPoolExecutor

    boosters = [_booster("binary"), _booster("lambdarank")]
    with ThreadPoolExecutor(2) as pool:
        compiled = list(pool.map(compile_forest, boosters))
    F = _rows(np.random.default_rng(5), 100, 12)
    for booster, forest in zip(boosters, compiled, strict=True):
        np.testing.assert_array_equal(forest.raw(F), booster.predict(F, num_threads=1, raw_score=True))
