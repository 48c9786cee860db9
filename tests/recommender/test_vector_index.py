"""The faiss vector index: built by size, in step with every upsert and removal, as good as exact search where it
matters, and carried through snapshots, job runs and replicas."""

from __future__ import annotations

import dataclasses

import faiss
import numpy as np
import pytest

from recommender import FeedContext, Item, Recommender, RecommenderConfig
from recommender.candidates.ann import search
from recommender.snapshot import load_snapshot, save_snapshot
from recommender.vector_index import VectorIndex, default_list_count, default_probe, exact_search
from tests.recommender.conftest import DIM, NOW, Clock, make_items

SMALL = RecommenderConfig(ann_index_min_items=60)


def _indexed(rec: Recommender) -> set[int]:
    """Rows the faiss index holds, read back from its inverted lists."""
    ivf = rec._state.catalog.index.ivf
    rows: set[int] = set()
    for lst in range(ivf.nlist):
        size = ivf.invlists.list_size(lst)
        if size:
            rows.update(faiss.rev_swig_ptr(ivf.invlists.get_ids(lst), size).tolist())
    return rows


def _assert_in_step(rec: Recommender) -> None:
    catalog = rec._state.catalog
    expected = set(catalog.indexed_rows().tolist())
    assert _indexed(rec) == expected and len(catalog.index) == len(expected)
    indexed = np.array(sorted(expected))
    for row in expected:  # each entry holds the vector of the item now at that row (as float16: approximately,
        # so it is checked as the nearest of the indexed vectors to what the entry decodes to)
        decoded = catalog.index.ivf.reconstruct(row)
        assert indexed[np.argmax(catalog.vectors[indexed] @ decoded)] == row


def _nearest(rec: Recommender, vector: np.ndarray, k: int = 10) -> list[str]:
    catalog = rec._state.catalog
    query = (vector / np.linalg.norm(vector)).astype(np.float32)[None, :]
    rows, _ = search(catalog, query, k, probe=catalog.index.n_lists if catalog.index is not None else 0)
    return [catalog.items[r].item_id for r in rows[0].tolist() if r >= 0]


def test_the_index_is_chosen_by_size():
    items = make_items(per_topic=20)  # 80 items
    exact = Recommender(RecommenderConfig(ann_index_min_items=1000), clock=Clock())
    exact.upsert_items(items)
    assert exact._state.catalog.index is None  # small: exact search over the vector matrix
    assert exact.run_job("vector_index", NOW)["index"] == "exact search"
    indexed = Recommender(SMALL, clock=Clock())
    indexed.upsert_items(items)  # a bulk upsert past the threshold builds it at once (start-up)
    index = indexed._state.catalog.index
    assert index is not None and len(index) == 80 and index.n_lists == default_list_count(80)
    assert indexed.run_job("vector_index", NOW)["index"] == "up to date"
    _assert_in_step(indexed)


def test_upserts_and_removals_keep_the_index_in_step():
    rec = Recommender(SMALL, clock=Clock())
    items = make_items(per_topic=25)
    rec.upsert_items(items)
    rng = np.random.default_rng(3)
    removed: set[str] = set()
    for step in range(60):  # removals move the last row into the hole: the index must follow the moves
        victim = items[int(rng.integers(len(items)))].item_id
        if victim not in removed:
            assert rec.remove_item(victim)
            removed.add(victim)
        if step % 10 == 0:
            _assert_in_step(rec)
    _assert_in_step(rec)
    found = set()
    for item in items:
        found |= set(_nearest(rec, item.vector, k=20))
    assert found and not found & removed  # a removed item is never returned

    # An upserted item is found; a changed vector moves it; an unavailable one leaves the index.
    target = np.random.default_rng(9).normal(size=DIM)
    rec.upsert_item(Item("newcomer", "someone", vector=target, topic="cats", uploaded_at=NOW))
    assert _nearest(rec, target)[0] == "newcomer"
    elsewhere = -target
    rec.upsert_item(Item("newcomer", "someone", vector=elsewhere, topic="cats", uploaded_at=NOW))
    assert _nearest(rec, elsewhere)[0] == "newcomer" and "newcomer" not in _nearest(rec, target)
    rec.upsert_item(Item("newcomer", "someone", vector=elsewhere, topic="cats", uploaded_at=NOW, available=False))
    assert "newcomer" not in _nearest(rec, elsewhere)
    rec.upsert_item(Item("novector", "someone", topic="cats", uploaded_at=NOW))  # no vector: never indexed
    _assert_in_step(rec)
    assert rec.remove_item("newcomer")
    _assert_in_step(rec)


def test_excluded_rows_never_take_a_place_in_the_top_k():
    rec = Recommender(SMALL, clock=Clock())
    items = make_items(per_topic=25)
    rec.upsert_items(items)
    catalog = rec._state.catalog
    query = catalog.vectors[:1]
    best, _ = search(catalog, query, 10, probe=catalog.index.n_lists)
    rows, scores = search(catalog, query, 10, probe=catalog.index.n_lists, exclude=best[0, :5])
    assert not set(rows[0].tolist()) & set(best[0, :5].tolist())
    assert (rows[0] >= 0).all() and (np.diff(scores[0]) <= 1e-6).all()  # still ten, best first
    assert rows[0, :5].tolist() == best[0, 5:].tolist()


def test_recall_against_exact_search_on_random_clustered_vectors():
    """Random unit vectors around 50 random topic centres (512-d, the benchmark's world): recall@50 of the
    IVF at the chosen lists and probe against exact search, for item-like and interest-like queries."""
    rng = np.random.default_rng(0)
    n, dim = 20_000, 512
    centers = rng.normal(size=(50, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    topic = rng.integers(0, 50, size=n)
    vectors = centers[topic] + rng.normal(size=(n, dim)).astype(np.float32) * (0.6 / np.sqrt(dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = np.arange(n)
    lists = default_list_count(n)
    index = VectorIndex.train(VectorIndex.training_sample(vectors, rows, lists, 0), lists, 0, n)
    index.add(rows, vectors)
    picked = rng.choice(n, 40, replace=False)
    item_like = vectors[picked] + rng.normal(size=(40, dim)).astype(np.float32) * 0.02
    interest_like = np.stack([vectors[np.flatnonzero(topic == topic[i])[:200]][rng.choice(200, 5)].mean(0)
                              for i in picked])
    for queries in (item_like, interest_like):
        queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
        found, _ = index.search(queries, 50, default_probe(lists), vectors)
        exact = queries @ vectors.T
        recall = [len(set(np.argpartition(-exact[j], 50)[:50].tolist()) & set(found[j].tolist())) / 50
                  for j in range(len(queries))]
        assert np.mean(recall) >= 0.99, np.mean(recall)


def test_the_index_survives_a_snapshot_and_restart(tmp_path):
    clock = Clock(NOW)
    rec = Recommender(SMALL, clock=clock)
    items = make_items(per_topic=25)
    rec.upsert_items(items)
    rec.remove_item(items[3].item_id)
    save_snapshot(rec, tmp_path / "state")
    restored, _ = load_snapshot(tmp_path / "state", config=SMALL, clock=clock)
    index = restored._state.catalog.index
    assert index is not None and len(index) == len(rec._state.catalog.index) == len(items) - 1
    _assert_in_step(restored)
    for item in items[:10]:
        assert _nearest(restored, item.vector) == _nearest(rec, item.vector)
    restored.upsert_item(dataclasses.replace(items[3], item_id="back"))  # and it keeps following changes
    assert _nearest(restored, items[3].vector)[0] == "back"
    _assert_in_step(restored)
    assert len(restored.recommend("someone", 10, FeedContext(now=NOW))) == 10


def test_the_job_retrains_after_the_catalogue_doubled_and_drops_the_index_below_the_threshold():
    rec = Recommender(SMALL, clock=Clock())
    items = make_items(per_topic=35)  # 140: more than twice the 60 it is first built for
    rec.upsert_items(items[:60])
    assert rec._state.catalog.index.built_size == 60
    for item in items[60:]:  # one at a time: only the job retrains
        rec.upsert_item(item)
    _assert_in_step(rec)
    summary = rec.run_job("vector_index", NOW)
    assert summary["index"] == "built" and summary["indexed"] == 140
    assert rec._state.catalog.index.built_size == 140
    _assert_in_step(rec)
    for item in items[:90]:
        rec.remove_item(item.item_id)
    assert rec.run_job("vector_index", NOW)["index"] == "removed" and rec._state.catalog.index is None
    assert len(rec.recommend("someone", 10, FeedContext(now=NOW))) == 10


@pytest.mark.parametrize("k", [1, 10])
def test_exact_search_below_the_threshold_filters_and_orders(k):
    rec = Recommender(RecommenderConfig(ann_index_min_items=1000), clock=Clock())
    items = make_items(per_topic=5)
    rec.upsert_items(items)
    catalog = rec._state.catalog
    rows, scores = search(catalog, catalog.vectors[:2], k, exclude=np.array([0]))
    exact = catalog.vectors[:2] @ catalog.active_vectors().T
    exact[:, 0] = -np.inf
    assert rows.tolist() == np.argsort(-exact, axis=1, kind="stable")[:, :k].tolist()
    assert np.allclose(scores, np.sort(exact, axis=1)[:, ::-1][:, :k])


def test_per_request_pools_match_a_full_scan():
    """The fresh pool (sampled among recent uploads) and the random-exposure pool (sized from the user's own
    lists) hold exactly what a scan of the whole catalogue with the filters would."""
    from recommender.candidates import fresh
    from recommender.candidates.base import CandidateRequest
    from recommender.filters import EligibleRows, FilterContext, first_failing, known_exclusions
    from recommender.ranking.features import interest_queries

    rec = Recommender(RecommenderConfig(), clock=Clock())
    items = make_items(per_topic=100, age=3600.0)  # 400 recent uploads: a pool far larger than the quota
    rec.upsert_items(items)
    state = rec._state
    rec.remove_item(items[7].item_id)
    rec.upsert_item(dataclasses.replace(items[8], available=False))
    user = state.user("viewer")
    user.blocked_creators.add(items[0].creator_id)
    user.hidden_items.add(items[150].item_id)
    user.muted_words = ("cooking",)
    ctx = FilterContext(user, state.catalog, state.config, NOW, frozenset({items[300].item_id}))
    allowed = {row for row in range(len(state.catalog)) if first_failing(ctx, row) is None}
    pool = EligibleRows(ctx)
    assert pool.size == len(allowed)
    rng = np.random.default_rng(0)
    drawn = set()
    for _ in range(200):
        sample = pool.sample(3, rng)
        assert len(set(sample.tolist())) == 3 and set(sample.tolist()) <= allowed
        drawn |= set(sample.tolist())
    assert len(drawn) > 0.75 * len(allowed)  # spread over the pool (600 draws: 88% expected)

    excluded = known_exclusions(ctx)
    request = CandidateRequest(state, state.config, user, interest_queries(user, state.catalog, NOW, 2.0), NOW,
                               excluded, rng)
    in_pool = set(fresh.pool_rows(state.catalog, state.config, NOW).tolist())
    full = {row for row in range(len(state.catalog)) if fresh.in_pool(state.catalog, state.config, NOW,
                                                                      np.array([row]))[0]}
    assert in_pool == full and len(full) > 8 * 30
    seen = set()
    for _ in range(20):
        found = [row for row, _ in fresh.generate(request, 30)]
        assert len(found) == 30 and set(found) <= in_pool and all(request.is_usable(row) for row in found)
        seen |= set(found)
    assert len(seen) > len(in_pool) / 2


def test_the_float16_short_list_is_re_ranked_by_exact_scores():
    """float16 only chooses the short list: the scores returned are the exact inner products, best first, and
    an index from an older snapshot (float32 IVFFlat) is still searched."""
    rng = np.random.default_rng(1)
    n, dim = 3_000, 64
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = np.arange(n)
    index = VectorIndex.train(VectorIndex.training_sample(vectors, rows, 16, 0), 16, 0, n)
    index.add(rows, vectors)
    assert isinstance(index.ivf, faiss.IndexIVFScalarQuantizer)
    queries = vectors[:5] + rng.normal(size=(5, dim)).astype(np.float32) * 0.05
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    found, scores = index.search(queries, 10, 16, vectors, exclude=np.array([0]))
    assert (found >= 0).all() and not (found == 0).any()
    np.testing.assert_allclose(scores, np.einsum("qkd,qd->qk", vectors[found], queries), rtol=1e-5, atol=1e-6)
    assert (np.diff(scores, axis=1) <= 0).all()
    exact_rows, _ = exact_search(vectors, np.arange(n) != 0, queries, 10)
    assert (found == exact_rows).all()  # every list probed: the same top 10 as exact search

    quantizer = faiss.IndexFlatIP(dim)
    old = faiss.IndexIVFFlat(quantizer, dim, 16, faiss.METRIC_INNER_PRODUCT)
    old.train(vectors)
    old.add_with_ids(vectors, rows.astype(np.int64))
    restored = VectorIndex(faiss.deserialize_index(faiss.serialize_index(old)), n)
    old_rows, _ = restored.search(queries, 10, 16, vectors, exclude=np.array([0]))
    assert (old_rows == exact_rows).all()
