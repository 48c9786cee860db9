"""The item catalogue: items plus row-aligned numpy arrays (vectors, availability, counters, trend).

Rows are dense: removing an item moves the last row into its place, so every array stays compact and a
single matmul over ``vectors[:n]`` scores the whole catalogue.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

from .features.interests import normalize
from .features.items import COUNTERS
from .types import Item

_WORD = re.compile(r"\w+", re.UNICODE)


def tokens_of(item: Item) -> frozenset[str]:
    return frozenset(_WORD.findall(item.text.lower())) | frozenset(item.hashtags)


class Catalog:
    def __init__(self, initial_capacity: int = 1024) -> None:
        self.dim: int | None = None
        self.size = 0
        self._capacity = initial_capacity
        self.items: list[Item] = []
        self.row_of: dict[str, int] = {}
        self.tokens: list[frozenset[str]] = []
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        self.has_vector = np.zeros(initial_capacity, dtype=bool)
        self.available = np.zeros(initial_capacity, dtype=bool)
        self.uploaded_at = np.zeros(initial_capacity, dtype=np.float64)
        self.counts = np.zeros((initial_capacity, len(COUNTERS)), dtype=np.float64)
        self.trend = np.zeros(initial_capacity, dtype=np.float32)
        self.cold_level = np.zeros(initial_capacity, dtype=np.int8)  # -1: left the cold-start pool
        self.coarse_list = np.full(initial_capacity, -1, dtype=np.int32)  # vector_index list per row
        self.coarse_centroids: np.ndarray | None = None  # None: search is exact over all vectors
        self.coarse_built_size = 0
        self.by_creator: dict[str, set[str]] = defaultdict(set)
        self.by_category: dict[str, set[str]] = defaultdict(set)
        self.by_sound: dict[str, set[str]] = defaultdict(set)
        self._vector_sum: np.ndarray | None = None
        self._vector_count = 0
        self._category_sums: dict[str, np.ndarray] = {}
        self.version = 0  # bumps on every change, for caches

    # ----- lookups -----------------------------------------------------------------------
    def __len__(self) -> int:
        return self.size

    def __contains__(self, item_id: str) -> bool:
        return item_id in self.row_of

    def get(self, item_id: str | None) -> Item | None:
        row = self.row_of.get(item_id) if item_id is not None else None
        return self.items[row] if row is not None else None

    def active_vectors(self) -> np.ndarray:
        return self.vectors[: self.size]

    def set_coarse_index(self, centroids: np.ndarray | None, lists: np.ndarray | None) -> None:
        self.coarse_centroids = centroids
        self.coarse_list[: self.size] = -1 if lists is None else lists
        self.coarse_list[: self.size][~self.has_vector[: self.size]] = -1
        self.coarse_built_size = self.size if centroids is not None else 0

    def mean_vector(self) -> np.ndarray | None:
        """Mean of all unit item vectors: cos(c, mean) is the similarity a random item has to c."""
        if self._vector_sum is None:
            return None
        return self._vector_sum / self._vector_count if self._vector_count else None

    def category_vector(self, category: str) -> np.ndarray | None:
        total = self._category_sums.get(category)
        return normalize(total.copy()) if total is not None and np.any(total) else None

    # ----- changes ------------------------------------------------------------------------
    def upsert(self, item: Item) -> int:
        vector = None
        if item.vector is not None:
            if self.dim is None:
                self._init_vectors(len(item.vector))
            if len(item.vector) != self.dim:
                raise ValueError(f"item {item.item_id}: vector has {len(item.vector)} dims, catalogue has {self.dim}")
            vector = normalize(item.vector.astype(np.float32))
        row = self.row_of.get(item.item_id)
        if row is None:
            row = self._append_row()
            self.row_of[item.item_id] = row
            self.items.append(item)
            self.tokens.append(tokens_of(item))
        else:
            self._unindex(row)
            self.items[row] = item
            self.tokens[row] = tokens_of(item)
        if vector is not None:
            self.vectors[row] = vector
            if self.coarse_centroids is not None:
                self.coarse_list[row] = int(np.argmax(self.coarse_centroids @ vector))
        elif self.dim is not None:
            self.vectors[row] = 0.0  # scores 0 against every query, so vector search never returns it
        self.has_vector[row] = vector is not None
        if vector is None:
            self.coarse_list[row] = -1
        self.available[row] = item.available
        self.uploaded_at[row] = item.uploaded_at
        self._index(row)
        self.version += 1
        return row

    def remove(self, item_id: str) -> bool:
        row = self.row_of.pop(item_id, None)
        if row is None:
            return False
        self._unindex(row)
        last = self.size - 1
        if row != last:
            moved = self.items[last]
            self.items[row] = moved
            self.tokens[row] = self.tokens[last]
            self.row_of[moved.item_id] = row
            for array in self._row_arrays():
                array[row] = array[last]
        self.items.pop()
        self.tokens.pop()
        for array in self._row_arrays():
            array[last] = 0
        self.coarse_list[last] = -1
        self.size -= 1
        self.version += 1
        return True

    # ----- internals ----------------------------------------------------------------------
    def _row_arrays(self) -> list[np.ndarray]:
        arrays = [self.has_vector, self.available, self.uploaded_at, self.counts, self.trend, self.cold_level,
                  self.coarse_list]
        if self.dim is not None:
            arrays.append(self.vectors)
        return arrays

    def _init_vectors(self, dim: int) -> None:
        self.dim = dim
        self.vectors = np.zeros((self._capacity, dim), dtype=np.float32)
        self._vector_sum = np.zeros(dim, dtype=np.float64)

    def _append_row(self) -> int:
        if self.size == self._capacity:
            self._capacity *= 2
            self.has_vector = _grow(self.has_vector, self._capacity)
            self.available = _grow(self.available, self._capacity)
            self.uploaded_at = _grow(self.uploaded_at, self._capacity)
            self.counts = _grow(self.counts, self._capacity)
            self.trend = _grow(self.trend, self._capacity)
            self.cold_level = _grow(self.cold_level, self._capacity)
            self.coarse_list = _grow(self.coarse_list, self._capacity, fill=-1)
            if self.dim is not None:
                self.vectors = _grow(self.vectors, self._capacity)
        self.size += 1
        return self.size - 1

    def _index(self, row: int) -> None:
        item = self.items[row]
        self.by_creator[item.creator_id].add(item.item_id)
        if item.category:
            self.by_category[item.category].add(item.item_id)
        if item.sound_id:
            self.by_sound[item.sound_id].add(item.item_id)
        if self.has_vector[row]:
            self._vector_sum += self.vectors[row]
            self._vector_count += 1
            if item.category:
                total = self._category_sums.setdefault(item.category, np.zeros(self.dim, dtype=np.float64))
                total += self.vectors[row]

    def _unindex(self, row: int) -> None:
        item = self.items[row]
        self.by_creator[item.creator_id].discard(item.item_id)
        if item.category:
            self.by_category[item.category].discard(item.item_id)
        if item.sound_id:
            self.by_sound[item.sound_id].discard(item.item_id)
        if self.has_vector[row]:
            self._vector_sum -= self.vectors[row]
            self._vector_count -= 1
            if item.category in self._category_sums:
                self._category_sums[item.category] -= self.vectors[row]


def _grow(array: np.ndarray, capacity: int, fill: int = 0) -> np.ndarray:
    grown = np.full((capacity, *array.shape[1:]), fill, dtype=array.dtype)
    grown[: len(array)] = array
    return grown
