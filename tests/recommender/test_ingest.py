"""The event worker's one-row feature build against the ranker's batch build it stands in for."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from recommender import Event, Item, Recommender, RecommenderConfig
from recommender.ingest import exposure_features
from recommender.ranking.features import FEATURE_NAMES, build_features, interest_queries
from recommender.synthetic import make_world, simulate_history

NOW = 1_700_000_000.0


def _trained(config: RecommenderConfig) -> Recommender:
    world = make_world(300, 40, dim=16, n_topics=5, n_creators=20, now=NOW, seed=3)
    rec = Recommender(config, clock=lambda: NOW)
    rec.upsert_items(world.items)
    rec.upsert_item(Item("no-vector", "c-x", None, topic="topic0", hashtags=("#a", "#b"), duration=12.0,
                         uploaded_at=NOW - 3600))
    rec.record_events(simulate_history(world, sessions_per_user=2, swipes_per_session=10, start=NOW - 86_400,
                                       end=NOW - 600, seed=3))
    chain = [world.items[(7 * j) % 300].item_id for j in range(30)]  # a next-item pattern the GRU learns
    rng = np.random.default_rng(3)
    for u in range(80):
        start = int(rng.integers(0, 24))
        rec.record_events(Event(f"chain{u}-{s}", f"u{u % 40}", "like", NOW - 86_400 + u * 100 + s, item_id)
                          for s, item_id in enumerate(chain[start : start + 6]))
    rec.set_declared_interests("u1", ["topic1"])
    rec.set_follows("u2", [world.items[0].creator_id])
    for job in ("video_stats", "trends", "item_neighbors", "long_term_interests", "sequence_model"):
        rec.run_job(job, NOW)
    return rec


@pytest.mark.parametrize("strength", [None, 0.0])
def test_the_event_workers_feature_row_is_the_rankers_row(strength):
    config = RecommenderConfig(sequence_epochs=40, sequence_dim=32, sequence_recall_k=3)
    if strength is not None:
        config = dataclasses.replace(config, rate_prior_strength=strength)
    rec = _trained(config)
    state = rec._state
    assert state.similarity.pairs and state.sequence is not None  # collaborative and sequence columns are live
    rng = np.random.default_rng(0)
    users = [*list(state.users.values())[:25], state.users["u2"], state.user("newcomer")]
    ids = [item.item_id for item in state.catalog.items[: len(state.catalog)]]
    row_of = state.catalog.row_of
    # random items, one without a vector, one to trend, the one u2's followed creator made
    rows = [*rng.integers(0, len(state.catalog), size=12).tolist(), row_of["no-vector"], row_of[ids[5]], 0]
    for n, user in enumerate(users[:-1]):  # this session's interests, and counters for every rate
        for k, kind in enumerate(("like", "view", "skip", "share", "comment", "follow", "hide")):
            item_id = ids[5] if kind == "share" else ids[rows[(n + k) % len(rows)]]
            rec.record_event(Event(f"live{n}-{k}", user.user_id, kind, NOW + 10 + n, item_id,
                                   watch_duration=3.0 if kind == "view" else None))
    rec.run_job("trends", NOW + 60)
    covered = np.zeros(len(FEATURE_NAMES), dtype=bool)
    for n, user in enumerate(users):
        now = NOW + 60 + 37 * n
        device = ("mobile", "desktop", "tablet", None)[n % 4]
        queries = interest_queries(user, state.catalog, now, config.declared_interest_weight)
        collab = state.collaborative(user, now)
        for row in rows:
            batch = np.array([row])
            expected = build_features(config, state.catalog, state.global_rates, user, queries, batch, now, device,
                                      collab, state.sequence_scores(user, batch))[0]
            got = exposure_features(state, user, row, now, device)
            assert got.dtype == np.float32 and got.shape == (len(FEATURE_NAMES),)
            # bit for bit: the training examples' rows must not depend on which builder made them
            assert got.tobytes() == expected.tobytes(), [
                (name, a, b) for name, a, b in zip(FEATURE_NAMES, got, expected, strict=True) if a != b]
            covered |= got != 0
    # every column took a value somewhere, so the comparison is not vacuous
    assert [name for name, seen in zip(FEATURE_NAMES, covered, strict=True) if not seen] == []
