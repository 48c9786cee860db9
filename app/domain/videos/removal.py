"""Deleting a video from everywhere it lives: its rows and files, its vectors and the recommender's memory."""

from __future__ import annotations

import asyncio

from app.adapters.vector_store import VectorStore
from app.domain.feed.recommender import RecommenderService
from app.domain.videos.services import VideoService


class VideoRemoval:
    def __init__(self, videos: VideoService, vectors: VectorStore, recommender: RecommenderService) -> None:
        self.videos = videos
        self.vectors = vectors
        self.recommender = recommender

    async def delete(self, video_id: str) -> None:
        await self.videos.delete(video_id)
        await asyncio.to_thread(self.vectors.delete_video, video_id)
        self.recommender.remove_video(video_id)
