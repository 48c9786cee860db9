"""Periodic-job outputs computed by one recommender and loaded by another (the scheduler and a web replica)."""

import numpy as np
import pytest

from recommender import JOBS, Recommender, RecommenderConfig, fusion
from recommender.published import PUBLISHED
from recommender.stores import InMemoryModelStore
from recommender.synthetic import make_world, simulate_history

from .conftest import NOW, Clock, ev


@pytest.fixture(scope="module")
def pair():
    """The same history in two recommenders sharing one model store; the replica saw the catalogue in another
    order (so its rows differ) and ran no job."""
    world = make_world(300, 30, dim=16, n_topics=4, now=NOW, seed=5)
    events = list(simulate_history(world, sessions_per_user=2, swipes_per_session=12, start=NOW - 2 * 86400,
                                   end=NOW - 4000, seed=5))
    events += [ev(f"u{u}", "share", NOW - 600 + u, "v7") for u in range(15)]
    store = InMemoryModelStore()
    config = RecommenderConfig(ann_index_min_items=100, train_min_examples=50)
    scheduler = Recommender(config, clock=Clock(), model_store=store)
    replica = Recommender(config, clock=Clock(), model_store=store)
    scheduler.upsert_items(world.items)
    for item in reversed(world.items):  # one at a time: a bulk upsert would build its own vector index
        replica.upsert_item(item)
    scheduler.record_events(events)
    replica.record_events(events)
    summaries = {name: scheduler.run_job(name, NOW) for name in scheduler.job_names()}
    return scheduler, replica, summaries


def test_every_job_publishes_outputs():
    assert set(PUBLISHED) == set(JOBS), "a new periodic job must say what it publishes to replicas"


def test_a_replica_loading_the_outputs_holds_what_the_scheduler_computed(pair):
    scheduler, replica, summaries = pair
    s, r = scheduler._state, replica._state
    assert r.trending == [] and r.similarity.pairs == 0 and r.catalog.index is None
    for name in JOBS:
        blob = scheduler.export_job_outputs(name)
        assert isinstance(blob, bytes) and blob
        replica.load_job_outputs(name, blob)

    assert r.trending == s.trending and r.trending[0] == "v7"
    assert replica.inspect_item("v7")["trend"] == pytest.approx(scheduler.inspect_item("v7")["trend"])
    assert r.popular == s.popular and r.global_rates == s.global_rates
    assert r.similarity.pairs == s.similarity.pairs > 0
    anchor = s.similarity.ids[0]
    assert replica.inspect_item(anchor)["neighbors"] == scheduler.inspect_item(anchor)["neighbors"]
    for item in ("v3", "v150"):  # cold-start levels follow ids, not rows
        assert replica.inspect_item(item)["cold_start_level"] == scheduler.inspect_item(item)["cold_start_level"]
    user = next(iter(s.users))
    np.testing.assert_allclose(r.users[user].long_term.vectors, s.users[user].long_term.vectors)
    assert r.catalog.index is not None and len(r.catalog.index) == len(s.catalog.index) > 0
    # each replica's own rows are filled into the scheduler's trained lists
    row_s, row_r = s.catalog.row_of["v9"], r.catalog.row_of["v9"]
    assert row_s != row_r and s.catalog.index.list_of(row_s) == r.catalog.index.list_of(row_r) >= 0
    assert r.metric_history[-1] == pytest.approx(s.metric_history[-1])
    assert r.ranker.active_version == s.ranker.active_version
    assert len(r.ranker.records) == len(s.ranker.records) > 1, summaries["ranker_training"]
    if s.sequence is not None:  # (trained only when it beats popularity on held-out next items)
        np.testing.assert_array_equal(r.sequence.embeddings, s.sequence.embeddings)
    assert r.sequence_versions == s.sequence_versions and len(s.sequence_versions) == 1, summaries["sequence_model"]
    assert r.fusion.active_version == s.fusion.active_version == 1
    assert [(v["version"], v["status"]) for v in r.fusion.history()] == [(1, "active")]
    assert r.fusion.active.compiled is not None
    fused = r.fusion.active.score(np.ones((2, len(fusion.FEATURE_NAMES)), dtype=np.float32))
    np.testing.assert_allclose(fused, s.fusion.active.score(np.ones((2, len(fusion.FEATURE_NAMES)), np.float32)))
    assert r.activity.at == s.activity.at and len(r.activity.times) == len(s.activity.times) > 0
    np.testing.assert_allclose(r.activity.recent(np.array([r.catalog.row_of["v9"]]), NOW),
                               s.activity.recent(np.array([s.catalog.row_of["v9"]]), NOW))
    assert len(replica.recommend("u1", k=10)) == 10


def test_outputs_of_another_job_or_garbage_are_refused(pair):
    scheduler, replica, _ = pair
    with pytest.raises(ValueError, match="trends"):
        replica.load_job_outputs("item_neighbors", scheduler.export_job_outputs("trends"))
    with pytest.raises((ValueError, OSError)):
        replica.load_job_outputs("trends", b"not a snapshot")
    with pytest.raises(KeyError):
        replica.load_job_outputs("nope", b"")
