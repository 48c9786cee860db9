"""A coarse (IVF-style) index for large catalogues: items are assigned to the nearest of ~2√N k-means
centroids; a query scores only the items in its ``probe`` nearest lists, exactly. Below
``ann_index_min_items`` items the recommender searches the whole matrix exactly instead.

The index lives in the catalogue as a row-aligned list assignment, so upserts and removals keep it in
step; the ``vector_index`` job (re)builds the centroids when the catalogue has grown.
"""

from __future__ import annotations

import numpy as np

TRAINING_SAMPLE = 10_000
ITERATIONS = 5
ASSIGN_CHUNK = 8_192


def train_centroids(vectors: np.ndarray, n_lists: int, seed: int) -> np.ndarray:
    """Spherical k-means on a sample, random initialisation (k-means++ is too slow for hundreds of lists)."""
    rng = np.random.default_rng(seed)
    sample = vectors[rng.choice(len(vectors), size=min(len(vectors), TRAINING_SAMPLE), replace=False)]
    centroids = sample[rng.choice(len(sample), size=n_lists, replace=False)].copy()
    for _ in range(ITERATIONS):
        assignment = np.argmax(sample @ centroids.T, axis=1)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assignment, sample)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        filled = norms[:, 0] > 0
        centroids[filled] = sums[filled] / norms[filled]
    return centroids.astype(np.float32)


def assign(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    out = np.empty(len(vectors), dtype=np.int32)
    for start in range(0, len(vectors), ASSIGN_CHUNK):
        out[start : start + ASSIGN_CHUNK] = np.argmax(vectors[start : start + ASSIGN_CHUNK] @ centroids.T, axis=1)
    return out


def probe_rows(centroids: np.ndarray, lists: np.ndarray, queries: np.ndarray, probe: int) -> np.ndarray:
    """Rows in the union of each query's ``probe`` nearest lists."""
    probe = min(probe, len(centroids))
    nearest = np.argpartition(-(queries @ centroids.T), probe - 1, axis=1)[:, :probe]
    wanted = np.zeros(len(centroids), dtype=bool)
    wanted[nearest.ravel()] = True
    return np.flatnonzero(wanted[np.maximum(lists, 0)] & (lists >= 0))


def default_list_count(n_items: int) -> int:
    return max(16, int(2 * np.sqrt(n_items)))
