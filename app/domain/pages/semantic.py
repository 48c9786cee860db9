"""Semantic search: the query embedded by the same text model that embedded the videos, matched against their
vectors and transcript lines in LanceDB. With CLIP weights the text tower shares the frames' space, so a query
finds what a video shows; without them it finds what a video says (caption, hashtags, transcript)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from app.adapters.vector_store import VectorStore
from media.models.registry import ModelRegistry

# Squared L2 between unit vectors is 2 - 2·cos: keep matches with cosine similarity above about 0.3.
MAX_DISTANCE = 1.4


def semantic_search_for(vectors: VectorStore, models: ModelRegistry) -> Callable[[str, int], Awaitable[list[str]]]:
    async def search(query: str, limit: int) -> list[str]:
        if not query.strip() or not vectors.count():
            return []
        embedder = await asyncio.to_thread(models.text_embedder)
        if embedder is None:
            return []
        vector = (await asyncio.to_thread(embedder.embed_texts, [query]))[0]
        videos = await asyncio.to_thread(vectors.search_videos, vector, limit)
        lines = await asyncio.to_thread(vectors.search_segments, vector, limit)
        hits = [(row["_distance"], row["id"]) for row in videos if row["content_model"] == embedder.model_id]
        hits += [(row["_distance"], row["video_id"]) for row in lines if row["model"] == embedder.model_id]
        ranked: dict[str, None] = {}
        for distance, video_id in sorted(hits):
            if distance <= MAX_DISTANCE:
                ranked.setdefault(video_id, None)
        return list(ranked)[:limit]

    return search
