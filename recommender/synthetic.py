"""Synthetic catalogues and event histories for tests, benchmarks and demos.

Items come in topic clusters in the embedding space and have a power-law "appeal"; simulated users have
one or two favourite topics and react to what they are shown (watch, like, share, skip, hide).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .types import Event, Item


@dataclass(frozen=True)
class SyntheticWorld:
    items: list[Item]
    topics: list[str]
    appeal: dict[str, float]  # item id -> power-law quality in (0, 1]
    user_topics: dict[str, tuple[str, ...]]  # user id -> favourite topics


def make_world(
    n_items: int,
    n_users: int,
    *,
    dim: int = 64,
    n_topics: int = 8,
    n_creators: int | None = None,
    now: float = 1_700_000_000.0,
    spread: float = 0.5,
    seed: int = 0,
) -> SyntheticWorld:
    rng = np.random.default_rng(seed)
    topics = [f"topic{t}" for t in range(n_topics)]
    centers = rng.normal(size=(n_topics, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    n_creators = n_creators or max(2, n_items // 20)
    topic_of = rng.integers(0, n_topics, size=n_items)
    noise = rng.normal(size=(n_items, dim)).astype(np.float32) * (spread / np.sqrt(dim))
    vectors = centers[topic_of] + noise
    appeal = np.clip(rng.pareto(1.5, size=n_items) / 10.0, 0.01, 1.0)  # power law: a few very appealing items
    ages = rng.exponential(5 * 86_400.0, size=n_items)
    items = [
        Item(
            item_id=f"v{i}",
            creator_id=f"c{int(rng.integers(0, n_creators))}",
            vector=vectors[i],
            text=f"a video about {topics[topic_of[i]]} number {i}",
            hashtags=(topics[topic_of[i]], f"tag{int(rng.integers(0, 50))}"),
            topic=topics[topic_of[i]],
            duration=float(rng.uniform(8, 60)),
            uploaded_at=float(now - ages[i]),
        )
        for i in range(n_items)
    ]
    user_topics = {
        f"u{u}": tuple(str(t) for t in rng.choice(topics, size=int(rng.integers(1, 3)), replace=False))
        for u in range(n_users)
    }
    return SyntheticWorld(items, topics, {f"v{i}": float(appeal[i]) for i in range(n_items)}, user_topics)


def simulate_history(
    world: SyntheticWorld,
    *,
    sessions_per_user: int,
    swipes_per_session: int,
    start: float,
    end: float,
    seed: int = 0,
) -> Iterator[Event]:
    """Users swipe through a mix of popular and random items; reactions depend on topic match and appeal."""
    rng = np.random.default_rng(seed)
    items = world.items
    appeal = np.array([world.appeal[item.item_id] for item in items])
    exposure_p = (appeal + 0.05) / (appeal + 0.05).sum()  # power-law popularity of what gets shown
    counter = 0
    for user_id, favourite in world.user_topics.items():
        for _ in range(sessions_per_user):
            t = float(rng.uniform(start, end))
            for index in rng.choice(len(items), size=swipes_per_session, p=exposure_p):
                item = items[index]
                match = item.topic in favourite
                p_watch = 0.15 + 0.6 * match + 0.2 * appeal[index]
                counter += 1
                yield Event(f"s{counter}", user_id, "impression", t, item.item_id)
                t += 1.0
                if rng.random() < p_watch:
                    watched = item.duration * float(rng.uniform(0.6, 1.0))
                    counter += 1
                    yield Event(f"s{counter}", user_id, "view", t + watched, item.item_id, watch_duration=watched)
                    if watched > 0.95 * item.duration:
                        counter += 1
                        yield Event(f"s{counter}", user_id, "complete_view", t + watched, item.item_id)
                    if rng.random() < 0.1 + 0.4 * match * appeal[index] + 0.2 * match:
                        counter += 1
                        yield Event(f"s{counter}", user_id, "like", t + watched + 0.5, item.item_id)
                    if rng.random() < 0.03 + 0.1 * match:
                        counter += 1
                        yield Event(f"s{counter}", user_id, "share", t + watched + 1.0, item.item_id)
                    t += watched + 2.0
                else:
                    counter += 1
                    yield Event(f"s{counter}", user_id, "skip", t + 1.5, item.item_id, watch_duration=1.5)
                    if not match and rng.random() < 0.02:
                        counter += 1
                        yield Event(f"s{counter}", user_id, "hide", t + 2.0, item.item_id)
                    t += 2.5
