import numpy as np
import pytest

from recommender import InMemoryModelStore, Recommender, RecommenderConfig
from recommender.ranking.features import FEATURE_NAMES, F
from recommender.ranking.model import TASKS, RankerModel
from recommender.synthetic import make_world, simulate_history
from recommender.training.trainer import evaluate, log_loss, roc_auc, train_incremental

from .conftest import NOW, Clock


def test_auc_and_log_loss_by_hand():
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert roc_auc(np.array([0, 1, 1]), np.array([0.5, 0.5, 0.9])) == pytest.approx(0.75)  # a tie counts half
    assert roc_auc(np.array([1, 1]), np.array([0.2, 0.3])) is None
    assert log_loss(np.array([1.0, 0.0]), np.array([0.5, 0.5])) == pytest.approx(np.log(2))


def _synthetic_examples(n, seed):
    """Likes depend on sim_short; the prior knows only a flat 10% rate for everything."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32)
    X[:, F["bias"]] = 1.0
    X[:, F["rate_like"]: F["rate_negative"] + 1] = 0.1
    X[:, F["rate_watch"]] = 0.1
    X[:, F["hour_sin"]] = rng.uniform(-1, 1, n)
    p_like = np.where(X[:, F["hour_sin"]] > 0, 0.5, 0.02)
    Y = np.zeros((n, len(TASKS)), dtype=np.float32)
    Y[:, TASKS.index("like")] = rng.random(n) < p_like
    return X, Y


def test_incremental_training_learns_what_the_prior_cannot():
    X, Y = _synthetic_examples(4000, 0)
    prior = RankerModel()
    trained = train_incremental(prior, X[:3000], Y[:3000], batch_size=128, epochs=3, learning_rate=0.5,
                                decay=1e-3, l2=1e-4, seed=0)
    before, after = evaluate(prior, X[3000:], Y[3000:]), evaluate(trained, X[3000:], Y[3000:])
    like = "like"
    assert after.per_task[like]["auc"] > 0.75 > before.per_task[like]["auc"]  # ceiling here is ~0.81
    assert after.log_loss < before.log_loss
    assert trained.steps == 3 * int(np.ceil(3000 / 128)) and prior.steps == 0  # the original is untouched


def _trained_recommender(store=None, **config):
    world = make_world(200, 40, dim=16, n_topics=4, now=NOW, seed=1)
    rec = Recommender(RecommenderConfig(**config), clock=Clock(), model_store=store)
    rec.upsert_items(world.items)
    rec.record_events(simulate_history(world, sessions_per_user=2, swipes_per_session=15, start=NOW - 3 * 86400,
                                       end=NOW - 7200, seed=1))
    return rec


def test_training_job_promotes_a_better_model_and_keeps_history():
    store = InMemoryModelStore()
    rec = _trained_recommender(store)
    summary = rec.run_job("ranker_training", NOW)
    assert summary["promoted"] is True
    assert summary["candidate"]["log_loss"] < summary["baseline"]["log_loss"]
    versions = rec.ranker_versions()
    assert [(v["version"], v["status"]) for v in versions] == [(0, "retired"), (1, "active")]
    assert versions[1]["parent_version"] == 0 and versions[1]["n_holdout"] > 0

    # A restart with the same store resumes the active version.
    again = Recommender(clock=Clock(), model_store=store)
    assert [v["status"] for v in again.ranker_versions()] == ["retired", "active"]
    assert again._state.ranker.active_version == 1

    # Roll back to the prior, then forward again.
    rec.rollback_ranker(0)
    assert {v["version"]: v["status"] for v in rec.ranker_versions()} == {0: "active", 1: "retired"}
    rec.rollback_ranker(1)
    assert rec._state.ranker.active_version == 1
    with pytest.raises(KeyError):
        rec.rollback_ranker(99)


def test_a_worse_candidate_is_rejected():
    # A huge learning rate without decay wrecks the candidate: it must not be promoted.
    rec = _trained_recommender(learning_rate=500.0, learning_rate_decay=0.0, train_epochs=1)
    summary = rec.run_job("ranker_training", NOW)
    assert summary["promoted"] is False
    assert rec.ranker_versions()[-1]["status"] == "rejected"
    assert rec._state.ranker.active_version == 0


def test_training_skips_without_enough_new_examples(rec):
    summary = rec.run_job("ranker_training", NOW)
    assert summary["skipped"] and summary["active_version"] == 0
