"""Every periodic job, run once on a synthetic history, with what each one changed."""

import subprocess
import sys

import pytest

from recommender import JOBS, Recommender, RecommenderConfig
from recommender.synthetic import make_world, simulate_history

from .conftest import NOW, Clock, ev


@pytest.fixture(scope="module")
def history_rec():
    world = make_world(400, 40, dim=16, n_topics=5, now=NOW, seed=3)
    config = RecommenderConfig(ann_index_min_items=100)  # small enough to exercise the faiss index
    rec = Recommender(config, clock=Clock())
    for item in world.items:  # one at a time: a bulk upsert would build the index itself
        rec.upsert_item(item)
    rec.record_events(simulate_history(world, sessions_per_user=2, swipes_per_session=15, start=NOW - 2 * 86400,
                                       end=NOW - 4000, seed=3))
    # A fresh trend in the last hour: many users share one item.
    for u in range(15):
        rec.record_event(ev(f"u{u}", "share", NOW - 600 + u, "v5"))
    return rec, world


def test_job_registry_names_and_intervals():
    assert set(JOBS) == {"engagement_farming", "video_stats", "trends", "item_neighbors", "long_term_interests",
                         "ranker_training", "sequence_model", "item_activity", "candidate_fusion", "vector_index",
                         "metrics_snapshot"}
    assert all(spec.interval_seconds > 0 and spec.description for spec in JOBS.values())
    with pytest.raises(KeyError):
        Recommender().run_job("nope")


def test_every_job_runs_and_reports_what_changed(history_rec):
    rec, _ = history_rec
    assert rec.inspect_user("u1")["interest_vectors"]["long_term"] == []
    assert rec.inspect_item("v5")["trend"] == 0.0
    summaries = {name: rec.run_job(name, NOW) for name in rec.job_names()}

    assert summaries["engagement_farming"]["newly_flagged"] == []
    assert summaries["video_stats"]["items_with_stats"] > 100
    assert summaries["video_stats"]["global_rates"]["skip"] != 0.3  # replaced the neutral default
    assert summaries["trends"]["top"][0][0] == "v5" and rec.inspect_item("v5")["trend"] > 0
    assert summaries["item_neighbors"]["items_with_neighbors"] > 0
    assert summaries["long_term_interests"]["users_updated"] == 40
    assert rec.inspect_user("u1")["interest_vectors"]["long_term"]
    assert summaries["ranker_training"]["candidate_version"] == 1
    assert summaries["vector_index"]["index"] == "built" and rec._state.catalog.index is not None
    assert summaries["metrics_snapshot"]["dau"] > 0 and rec.metric_history()[-1]["dau"] > 0
    assert all(s["job"] == name and s["at"] == NOW for name, s in summaries.items())
    assert set(rec.last_job_runs()) == set(JOBS)
    # Feeds still work on the faiss index, and a second index run has nothing to do.
    assert len(rec.recommend("u1", k=10)) == 10
    assert rec.run_job("vector_index", NOW)["index"] == "up to date"


def test_faiss_index_recall_against_exact_search(history_rec):
    import numpy as np

    from recommender.candidates.ann import search

    rec, _ = history_rec
    catalog = rec._state.catalog
    assert catalog.index is not None
    queries = catalog.vectors[:20]
    exact = queries @ catalog.active_vectors().T
    rows, _ = search(catalog, queries, 20)
    recall = []
    for j in range(len(queries)):
        truth = set(np.argsort(-exact[j])[:20].tolist())
        recall.append(len(truth & set(rows[j].tolist())) / 20)
    assert np.mean(recall) >= 0.95


def test_engagement_farming_is_flagged_and_ignored(history_rec):
    rec, _ = history_rec
    target = "v7"
    likes_before = rec.inspect_item(target)["stats"]["likes"]
    for b in range(12):  # brand-new accounts, one burst of likes within two minutes
        rec.record_event(ev(f"bot{b}", "like", NOW + 100 + b * 10, target, info={"account_created_at": NOW + 50}))
    assert rec.inspect_item(target)["stats"]["likes"] == likes_before + 12  # counted live at first
    summary = rec.run_job("engagement_farming", NOW + 300)
    assert sorted(summary["newly_flagged"]) == sorted(f"bot{b}" for b in range(12))
    assert summary["burst_items"] == [target]
    assert rec.inspect_item(target)["stats"]["likes"] == likes_before  # recomputed without them
    assert rec.inspect_user("bot1")["suspicious"]
    assert target not in rec._state.trending
    rec.record_event(ev("bot1", "like", NOW + 400, target))  # later signals are ignored live, too
    assert rec.inspect_item(target)["stats"]["likes"] == likes_before
    # Real users liking slowly over days are not flagged.
    assert rec.run_job("engagement_farming", NOW + 500)["newly_flagged"] == []


def test_library_never_imports_the_web_layer_or_the_orm():
    code = (
        "import sys, recommender, recommender.jobs, recommender.synthetic\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "{'app', 'litestar', 'sqlmodel', 'sqlalchemy', 'alembic', 'aiosqlite', 'media'}]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_video_stats_continue_from_their_checkpoint_exactly_as_a_full_recount():
    world = make_world(120, 20, dim=8, n_topics=3, now=NOW, seed=5)
    history = list(simulate_history(world, sessions_per_user=2, swipes_per_session=12, start=NOW - 2 * 86400,
                                    end=NOW - 4000, seed=5))
    half = len(history) // 2
    rec = Recommender(RecommenderConfig(), clock=Clock())
    rec.upsert_items(world.items)
    rec.record_events(history[:half])
    rec.run_job("video_stats", NOW - 3000)
    first = rec._state.recount_checkpoint
    assert first is not None and first.length == half
    rec.record_events(history[half:])
    rec.record_event(ev("u1", "unlike", NOW - 100, history[-1].item_id))
    rec.run_job("video_stats", NOW)
    continued = rec._state.catalog.counts.copy()
    assert rec._state.recount_checkpoint.length == len(history) + 1
    rec._state.recount_checkpoint = None  # a full recount of the same log
    rec.run_job("video_stats", NOW)
    assert continued.sum() > 0
    assert (rec._state.catalog.counts == continued).all()
    # a flagged account changes what counts: the checkpoint is not reused
    rec._state.suspicious_users.add("u1")
    rec.run_job("video_stats", NOW)
    assert rec._state.recount_checkpoint.key[0] == ("u1",)
    full = rec._state.catalog.counts.copy()
    rec._state.recount_checkpoint = None
    rec.run_job("video_stats", NOW)
    assert (rec._state.catalog.counts == full).all()
