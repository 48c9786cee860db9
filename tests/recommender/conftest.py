"""Small synthetic worlds and helpers shared by the recommender tests."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from recommender import Event, Item, Recommender, RecommenderConfig

NOW = 1_700_000_000.0
DIM = 32
TOPICS = ("cats", "cooking", "cars", "music")


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


_ids = itertools.count()


def ev(user: str, kind: str, at: float, item: str | None = None, **kwargs) -> Event:
    return Event(f"t{next(_ids)}", user, kind, at, item, **kwargs)


def topic_vectors(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(len(TOPICS), DIM))
    return {topic: centers[i] / np.linalg.norm(centers[i]) for i, topic in enumerate(TOPICS)}


def make_items(per_topic: int = 25, creators_per_topic: int = 6, seed: int = 0, age: float = 5 * 86_400.0
               ) -> list[Item]:
    """Items in four well-separated topic clusters; creators are topic specialists."""
    rng = np.random.default_rng(seed)
    centers = topic_vectors(seed)
    items = []
    for t, topic in enumerate(TOPICS):
        for i in range(per_topic):
            vector = centers[topic] + rng.normal(size=DIM) * 0.07  # within-topic cosine ≈ 0.85
            items.append(
                Item(
                    item_id=f"{topic}-{i}",
                    creator_id=f"{topic}-creator-{i % creators_per_topic}",
                    vector=vector,
                    text=f"a {topic} video",
                    hashtags=(f"#{topic}",),
                    topic=topic,
                    duration=20.0,
                    uploaded_at=NOW - age - (t * per_topic + i) * 60.0,
                )
            )
    return items


def topic_of(item_id: str) -> str:
    return item_id.split("-")[0]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def items() -> list[Item]:
    return make_items()


@pytest.fixture
def rec(clock: Clock, items: list[Item]) -> Recommender:
    recommender = Recommender(RecommenderConfig(), clock=clock)
    recommender.upsert_items(items)
    return recommender
