"""No test-split event may leak into training, for any split."""

from __future__ import annotations

from collections import defaultdict

from recommender.evaluation.splits import (
    global_temporal_split,
    kfold_splits,
    leave_last_out,
    user_chronological_split,
    validation_split,
)


def _keys(events):
    return {(x.user_id, x.item_id, x.timestamp) for x in events}


def test_user_chronological_split_is_disjoint_and_chronological(dataset):
    split = user_chronological_split(dataset.interactions, 0.2)
    assert not _keys(split.train) & _keys(split.test)
    assert len(split.train) + len(split.test) == len(dataset.interactions)
    last_train = defaultdict(float)
    for x in split.train:
        last_train[x.user_id] = max(last_train[x.user_id], x.timestamp)
    for x in split.test:
        assert x.timestamp >= last_train[x.user_id]
    # every user with events keeps a training history, about 20% goes to test
    assert {x.user_id for x in split.test} <= {x.user_id for x in split.train}
    assert 0.15 < len(split.test) / len(dataset.interactions) < 0.25


def test_global_temporal_split_cuts_in_time(dataset):
    split = global_temporal_split(dataset.interactions, 0.2)
    assert max(x.timestamp for x in split.train) < min(x.timestamp for x in split.test)
    assert not _keys(split.train) & _keys(split.test)
    assert {x.user_id for x in split.test} <= {x.user_id for x in split.train}  # warm users only


def test_validation_is_carved_from_training_only(dataset):
    split = user_chronological_split(dataset.interactions, 0.2)
    val = validation_split(split, 0.2)
    test_keys = _keys(split.test)
    assert not _keys(val.train) & test_keys
    assert not _keys(val.test) & test_keys
    assert _keys(val.train) | _keys(val.test) == _keys(split.train)


def test_kfold_each_event_in_exactly_one_test_fold(dataset):
    folds = kfold_splits(dataset.interactions, 4, seed=1)
    seen = defaultdict(int)
    for fold in folds:
        assert not _keys(fold.train) & _keys(fold.test)
        assert len(fold.train) + len(fold.test) == len(dataset.interactions)
        for key in _keys(fold.test):
            seen[key] += 1
    assert set(seen.values()) == {1}
    assert len(seen) == len(_keys(dataset.interactions))


def test_leave_last_out(dataset):
    split = leave_last_out(dataset.interactions, 1)
    assert len({x.user_id for x in split.test}) == len(split.test)
    assert not _keys(split.train) & _keys(split.test)


def test_truth_is_positive_engagement_only(dataset):
    split = user_chronological_split(dataset.interactions, 0.2)
    truth = split.truth()
    for x in split.test:
        if x.item_id in truth.get(x.user_id, set()):
            assert x.positive or any(
                y.positive for y in split.test if y.user_id == x.user_id and y.item_id == x.item_id
            )
    assert all(x.rating >= 4 for x in split.test if x.item_id in truth.get(x.user_id, set()))
