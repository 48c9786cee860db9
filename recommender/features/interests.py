"""Interest vectors in the content-embedding space, kept as a few weighted centroids.

Several centroids instead of one average, so a user with two tastes keeps both: the mean of a cat
vector and a cooking vector is close to neither.
"""

from __future__ import annotations

import math

import numpy as np

from .decay import decay_rate


def normalize(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


class InterestCentroids:
    """Online clustering with exponentially decaying weights (short-term, mid-term, negative profiles)."""

    __slots__ = ("capacity", "rate", "merge_similarity", "vectors", "weights", "updated_at", "version")

    def __init__(self, capacity: int, half_life: float, merge_similarity: float) -> None:
        self.capacity = capacity
        self.rate = decay_rate(half_life)
        self.merge_similarity = merge_similarity
        self.vectors: np.ndarray | None = None  # (m, d), rows L2-normalised
        self.weights = np.zeros(0, dtype=np.float64)
        self.updated_at = 0.0
        self.version = 0  # bumps whenever the vectors change (cache key)

    def __len__(self) -> int:
        return len(self.weights)

    def clear(self) -> None:
        self.version += 1
        self.vectors = None
        self.weights = np.zeros(0, dtype=np.float64)

    def _decay_to(self, now: float) -> None:
        if len(self.weights) and now > self.updated_at:
            self.weights *= math.exp(-self.rate * (now - self.updated_at))
        self.updated_at = max(self.updated_at, now)

    def add(self, vector: np.ndarray, weight: float, now: float) -> None:
        """Pull the nearest centroid toward ``vector`` or start a new one (replacing the weakest when full)."""
        if weight <= 0:
            return
        self.version += 1
        self._decay_to(now)
        if self.vectors is None or not len(self.weights):
            self.vectors = vector[None, :].astype(np.float32).copy()
            self.weights = np.array([weight], dtype=np.float64)
            return
        sims = self.vectors @ vector
        best = int(np.argmax(sims))
        if sims[best] >= self.merge_similarity:
            total = self.weights[best] + weight
            self.vectors[best] = normalize(self.vectors[best] * self.weights[best] + vector * weight)
            self.weights[best] = total
        elif len(self.weights) < self.capacity:
            self.vectors = np.vstack([self.vectors, vector[None, :].astype(np.float32)])
            self.weights = np.append(self.weights, weight)
        else:
            weakest = int(np.argmin(self.weights))
            self.vectors[weakest] = vector
            self.weights[weakest] = weight

    def set(self, vectors: np.ndarray, weights: np.ndarray, now: float) -> None:
        """Replace all centroids (the long-term job computes them in batch)."""
        self.version += 1
        self.vectors = vectors.astype(np.float32) if len(weights) else None
        self.weights = np.asarray(weights, dtype=np.float64)
        self.updated_at = now

    def current(self, now: float, min_weight: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
        """(vectors, weights) decayed to ``now``; empty arrays when there is no profile."""
        if self.vectors is None or not len(self.weights):
            return np.zeros((0, 0), dtype=np.float32), np.zeros(0)
        factor = math.exp(-self.rate * max(0.0, now - self.updated_at))
        weights = self.weights * factor
        keep = weights >= min_weight
        return self.vectors[keep], weights[keep]

    def mean(self, now: float) -> np.ndarray | None:
        vectors, weights = self.current(now)
        if not len(weights):
            return None
        return normalize((vectors * weights[:, None]).sum(axis=0))


def spherical_kmeans(
    vectors: np.ndarray, weights: np.ndarray, k: int, seed: int, iterations: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted spherical k-means with k-means++ seeding; returns (centroids, total weight per centroid)."""
    n = len(vectors)
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    chosen = [int(np.argmax(weights))]
    for _ in range(1, k):
        distance = 1.0 - np.max(vectors @ vectors[chosen].T, axis=1)
        probabilities = np.clip(distance, 0, None) * weights
        if probabilities.sum() <= 1e-9:
            break
        chosen.append(int(rng.choice(n, p=probabilities / probabilities.sum())))
    centroids = vectors[chosen].copy()
    for _ in range(iterations):
        assignment = np.argmax(vectors @ centroids.T, axis=1)
        for j in range(len(centroids)):
            members = assignment == j
            if members.any():
                centroids[j] = normalize((vectors[members] * weights[members, None]).sum(axis=0))
    assignment = np.argmax(vectors @ centroids.T, axis=1)
    totals = np.bincount(assignment, weights=weights, minlength=len(centroids))
    keep = totals > 0
    return centroids[keep], totals[keep]
