"""Small deterministic datasets for the evaluation tests (no network, no real models)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from recommender.evaluation.data import Dataset, ItemInfo, interaction_from_rating
from recommender.evaluation.embedding import hashed_bow_embedder

GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi"]


def make_dataset(n_users: int = 60, n_items: int = 90, per_user: int = 20, seed: int = 0) -> Dataset:
    """Users like one or two genres; ratings follow taste plus noise; timestamps increase per user."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    items = {}
    for i in range(n_items):
        genre = GENRES[i % len(GENRES)]
        items[str(i)] = ItemInfo(
            item_id=str(i),
            text=f"Movie {i} {genre}",
            topic=genre,
            creator_id=f"mlc{i}",
            genres=(genre,),
            hashtags=(genre.lower(),),
        )
    popularity = nrng.zipf(1.6, n_items).astype(float)
    interactions = []
    for u in range(n_users):
        liked = set(rng.sample(GENRES, 2))
        weights = popularity / popularity.sum()
        picks = nrng.choice(n_items, size=per_user, replace=False, p=weights)
        t = 1_000_000.0 + rng.random() * 10_000
        for j in picks:
            genre = GENRES[int(j) % len(GENRES)]
            score = (4.2 if genre in liked else 2.4) + nrng.normal(0, 0.8)
            rating = float(min(5, max(1, round(score))))
            t += rng.random() * 600 + 1
            interactions.append(interaction_from_rating(str(u), str(int(j)), t, rating))
    return Dataset("synthetic", items, interactions)


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    return make_dataset()


@pytest.fixture(scope="session")
def embed():
    return hashed_bow_embedder(32)
