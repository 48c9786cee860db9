"""The LanceDB index: every vector records the model that made it; another vector size gets a fresh table."""

from __future__ import annotations

import numpy as np

from app.adapters.vector_store import SEGMENTS, VectorStore, VideoVectors


def item(video_id: str, dim: int, model: str, visual_dim: int | None = None) -> VideoVectors:
    rng = np.random.default_rng(abs(hash(video_id)) % 2**32)
    return VideoVectors(video_id=video_id, creator_id="c", topic="t", hashtags=["t"], caption=f"caption {video_id}",
                        duration=5.0, created_at=1.0, content_vector=rng.normal(size=dim), content_model=model,
                        visual_vector=None if visual_dim is None else rng.normal(size=visual_dim),
                        visual_model="" if visual_dim is None else "clip:ViT-B-32")


def test_each_vector_records_its_model_and_upserts_do_not_duplicate(tmp_path):
    store = VectorStore(tmp_path / "lancedb")
    store.upsert_video(item("a", 384, "text:all-MiniLM-L6-v2"))
    store.upsert_video(item("b", 384, "text:all-MiniLM-L6-v2", visual_dim=512))
    store.upsert_video(item("a", 384, "text:all-MiniLM-L6-v2"))  # a re-run of the index step
    rows = {row["id"]: row for row in store.all_videos()}
    assert sorted(rows) == ["a", "b"]
    assert {row["content_model"] for row in rows.values()} == {"text:all-MiniLM-L6-v2"}
    assert rows["b"]["visual_model"] == "clip:ViT-B-32" and len(rows["b"]["visual_vector"]) == 512
    assert rows["a"]["visual_model"] == ""  # no visual vector: said, not faked
    assert len(store.vector_of("a")) == 384

    store.replace_segments("a", [{"start": 0.0, "end": 1.0, "text": "hello"}], np.ones((1, 384)), "text:minilm")
    store.replace_segments("a", [{"start": 0.0, "end": 1.0, "text": "hello"}], np.ones((1, 384)), "text:minilm")
    assert store.count(SEGMENTS, "video_id = 'a'") == 1


def test_a_model_with_another_vector_size_gets_a_fresh_table_not_a_mixed_one(tmp_path):
    store = VectorStore(tmp_path / "lancedb")
    store.upsert_video(item("old1", 384, "text:all-MiniLM-L6-v2"))
    store.upsert_video(item("old2", 384, "text:all-MiniLM-L6-v2"))
    store.upsert_video(item("new", 512, "clip:ViT-B-32:laion2b_s34b_b79k"))
    rows = store.all_videos()
    assert [row["id"] for row in rows] == ["new"]
    assert rows[0]["content_model"] == "clip:ViT-B-32:laion2b_s34b_b79k" and len(rows[0]["vector"]) == 512
    hits = store.search_videos(np.ones(512), k=5)
    assert [hit["id"] for hit in hits] == ["new"]
    # Reopening the folder finds the fresh table as it was left.
    assert [row["id"] for row in VectorStore(tmp_path / "lancedb").all_videos()] == ["new"]
