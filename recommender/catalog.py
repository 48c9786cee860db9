"""The item catalogue: items plus row-aligned numpy arrays (vectors, availability, counters, trend).

Rows are dense: removing an item moves the last row into its place, so every array stays compact and a
single matmul over ``vectors[:n]`` scores the whole catalogue. Above ``ann_index_min_items`` a faiss IVF index
(``vector_index``) follows every change; a row set of the recent uploads and a count of the available items
let a request find the fresh pool and size the random-exposure pool without scanning the catalogue.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

from .features.interests import normalize
from .features.items import COUNTERS
from .types import Item
from .vector_index import VectorIndex, default_list_count

_WORD = re.compile(r"\w+", re.UNICODE)


def tokens_of(item: Item) -> frozenset[str]:
    return frozenset(_WORD.findall(item.text.lower())) | frozenset(item.hashtags)


class RowSet:
    """A set of catalogue rows with O(1) add, discard, membership and uniform sampling: ``rows[:len]`` holds the
    members, ``position`` (row-aligned, moved with the catalogue's other arrays) each row's place in it or -1."""

    def __init__(self, capacity: int) -> None:
        self.rows = np.zeros(capacity, dtype=np.int64)
        self.position = np.full(capacity, -1, dtype=np.int64)
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def __contains__(self, row: int) -> bool:
        return self.position[row] >= 0

    def members(self) -> np.ndarray:
        return self.rows[: self.size]

    def add(self, row: int) -> None:
        if self.position[row] >= 0:
            return
        if self.size == len(self.rows):
            self.rows = _grow(self.rows, 2 * len(self.rows))
        self.rows[self.size] = row
        self.position[row] = self.size
        self.size += 1

    def discard(self, row: int) -> None:
        at = self.position[row]
        if at < 0:
            return
        last = self.rows[self.size - 1]
        self.rows[at] = last
        self.position[last] = at
        self.position[row] = -1
        self.size -= 1

    def moved(self, row: int) -> None:
        """The catalogue moved a row to ``row`` (its ``position`` entry came along): point the member at it."""
        at = self.position[row]
        if at >= 0:
            self.rows[at] = row

    def grow(self, capacity: int) -> None:
        self.position = _grow(self.position, capacity, fill=-1)


class ProfileKeys:
    """Per row, the codes of the (kind, name) keys a user profile scores an item by: its topic ("topic",
    ``item.category``), its creator, its hashtags (in order, duplicates kept), plus its duration, so a request
    turns profile scores into feature columns with numpy instead of a Python loop over the candidates.
    Codes index ``names``; -1 pads a row (no topic, fewer hashtags than the widest row). Codes never shrink."""

    TOPIC, CREATOR, FIRST_TAG = 0, 1, 2

    def __init__(self, capacity: int) -> None:
        self.code_of: dict[tuple[str, str], int] = {}
        self.names: list[tuple[str, str]] = []
        self.codes = np.full((capacity, self.FIRST_TAG), -1, dtype=np.int32)
        self.n_tags = np.zeros(capacity, dtype=np.int32)
        self.duration = np.zeros(capacity, dtype=np.float64)

    def code(self, key: tuple[str, str]) -> int:
        code = self.code_of.get(key)
        if code is None:
            code = self.code_of[key] = len(self.names)
            self.names.append(key)
        return code

    def set(self, row: int, item: Item) -> None:
        tags = item.hashtags
        width = self.FIRST_TAG + len(tags)
        if width > self.codes.shape[1]:
            wider = np.full((len(self.codes), width), -1, dtype=np.int32)
            wider[:, : self.codes.shape[1]] = self.codes
            self.codes = wider
        codes = self.codes[row]
        codes[:] = -1
        if item.category:
            codes[self.TOPIC] = self.code(("topic", item.category))
        codes[self.CREATOR] = self.code(("creator", item.creator_id))
        for j, tag in enumerate(tags):
            codes[self.FIRST_TAG + j] = self.code(("hashtag", tag))
        self.n_tags[row] = len(tags)
        self.duration[row] = item.duration

    def arrays(self) -> list[np.ndarray]:
        return [self.codes, self.n_tags, self.duration]

    def grow(self, capacity: int) -> None:
        self.codes = _grow(self.codes, capacity, fill=-1)
        self.n_tags = _grow(self.n_tags, capacity)
        self.duration = _grow(self.duration, capacity)


class Catalog:
    _profile_keys: ProfileKeys | None = None  # a class default too: a catalogue from an older snapshot lacks it

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
        self.index: VectorIndex | None = None  # None: vector search is exact over ``vectors[:size]``
        self.available_count = 0
        self.recent_rows = RowSet(initial_capacity)  # uploads newer than ``recent_since`` (the fresh pool's superset)
        self.recent_since = -np.inf
        self.query_cache: dict = {}  # small per-version results (e.g. rows matching a muted word), see filters
        self.by_creator: dict[str, set[str]] = defaultdict(set)
        self.by_category: dict[str, set[str]] = defaultdict(set)
        self.by_sound: dict[str, set[str]] = defaultdict(set)
        self._vector_sum: np.ndarray | None = None
        self._vector_count = 0
        self._category_sums: dict[str, np.ndarray] = {}
        self.version = 0  # bumps on every change, for caches
        # Kept current from the first row on: built lazily it cost the first request 6.7 s at 1M items.
        self._profile_keys: ProfileKeys | None = ProfileKeys(initial_capacity)

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

    def indexed_rows(self) -> np.ndarray:
        """Rows the vector index holds: those with a vector that are available."""
        n = self.size
        return np.flatnonzero(self.has_vector[:n] & self.available[:n])

    def set_index(self, index: VectorIndex | None) -> None:
        """Serve vector search from ``index`` (trained, empty or already filled with ``indexed_rows``), or
        exactly when None."""
        if index is not None and len(index) == 0:
            rows = self.indexed_rows()
            for start in range(0, len(rows), 65_536):
                chunk = rows[start : start + 65_536]
                index.add(chunk, self.vectors[chunk])
        self.index = index

    def train_index(self, seed: int) -> VectorIndex:
        """A new IVF index trained on a sample of the indexed rows (empty: ``set_index`` fills it). Reads rows
        without a lock: the caller holds it, or checks ``version`` afterwards."""
        rows = self.indexed_rows()
        n_lists = default_list_count(len(rows))
        sample = VectorIndex.training_sample(self.vectors, rows, n_lists, seed).copy()
        return VectorIndex.train(sample, n_lists, seed, built_size=self.size)

    def index_due(self, min_items: int) -> str | None:
        """Why the vector index should be (re)built or dropped now, or None while it is right for the size."""
        if self.size < min_items or not self.dim:
            return "drop" if self.index is not None else None
        if self.index is None:
            return "build"
        if not self.index.built_size / 2 <= self.size <= 2 * self.index.built_size:
            return "rebuild"
        return None

    def prune_recent(self, since: float) -> int:
        """Forget uploads older than ``since`` from the recent set (the cohort job calls it); returns how many."""
        self.recent_since = max(self.recent_since, since)
        members = self.recent_rows.members()
        old = members[self.uploaded_at[members] < self.recent_since]
        for row in old.tolist():
            self.recent_rows.discard(row)
        return len(old)

    def mean_vector(self) -> np.ndarray | None:
        """Mean of all unit item vectors: cos(c, mean) is the similarity a random item has to c."""
        if self._vector_sum is None:
            return None
        return self._vector_sum / self._vector_count if self._vector_count else None

    def category_vector(self, category: str) -> np.ndarray | None:
        total = self._category_sums.get(category)
        return normalize(total.copy()) if total is not None and np.any(total) else None

    def profile_keys(self) -> ProfileKeys:
        """The rows' profile-key codes (``ProfileKeys``), kept current by every change (built here only for a
        catalogue restored from a snapshot older than them)."""
        keys = self._profile_keys
        if keys is None:
            keys = ProfileKeys(self._capacity)
            for row, item in enumerate(self.items):
                keys.set(row, item)
            self._profile_keys = keys
        return keys

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
        keys = self._profile_keys
        if keys is not None:
            keys.set(row, item)
        if vector is not None:
            self.vectors[row] = vector
        elif self.dim is not None:
            self.vectors[row] = 0.0
        self.has_vector[row] = vector is not None
        self.available[row] = item.available
        self.uploaded_at[row] = item.uploaded_at
        self._index(row)
        if self.index is not None:
            self.index.remove([row])
            if vector is not None and item.available:
                self.index.add(np.array([row]), vector[None, :])
        self.version += 1
        return row

    def remove(self, item_id: str) -> bool:
        row = self.row_of.pop(item_id, None)
        if row is None:
            return False
        self._unindex(row)
        last = self.size - 1
        if self.index is not None:
            self.index.remove([row, last] if row != last else [row])
        if row != last:
            moved = self.items[last]
            self.items[row] = moved
            self.tokens[row] = self.tokens[last]
            self.row_of[moved.item_id] = row
            for array in self._row_arrays():
                array[row] = array[last]
            for rows in self._row_sets():
                rows.moved(row)
            if self.index is not None and self.has_vector[row] and self.available[row]:
                self.index.add(np.array([row]), self.vectors[row][None, :])
        self.items.pop()
        self.tokens.pop()
        for array in self._row_arrays():
            array[last] = 0
        for rows in self._row_sets():
            rows.position[last] = -1
        self.size -= 1
        self.version += 1
        return True

    # ----- internals ----------------------------------------------------------------------
    def _row_arrays(self) -> list[np.ndarray]:
        arrays = [self.has_vector, self.available, self.uploaded_at, self.counts, self.trend, self.cold_level,
                  *(rows.position for rows in self._row_sets())]
        keys = self._profile_keys
        if keys is not None:
            arrays += keys.arrays()
        if self.dim is not None:
            arrays.append(self.vectors)
        return arrays

    def _row_sets(self) -> tuple[RowSet, ...]:
        return (self.recent_rows,)

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
            for rows in self._row_sets():
                rows.grow(self._capacity)
            keys = self._profile_keys
            if keys is not None:
                keys.grow(self._capacity)
            if self.dim is not None:
                self.vectors = _grow(self.vectors, self._capacity)
        self.size += 1
        return self.size - 1

    def _index(self, row: int) -> None:
        item = self.items[row]
        self.available_count += bool(self.available[row])
        if item.uploaded_at >= self.recent_since:
            self.recent_rows.add(row)
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
        self.available_count -= bool(self.available[row])
        self.recent_rows.discard(row)
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
