"""Train/test splits. Every split returns disjoint train and test logs; nothing in test is in train."""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .data import Interaction, ItemInfo

__all__ = [
    "Split",
    "global_temporal_split",
    "kfold_splits",
    "leave_last_out",
    "user_chronological_split",
    "validation_split",
]


@dataclass
class Split:
    """A train/test pair. ``cutoff`` is the time the models are "now" (the last training timestamp)."""

    name: str
    train: list[Interaction]
    test: list[Interaction]

    @property
    def cutoff(self) -> float:
        return max((x.timestamp for x in self.train), default=0.0)

    def catalogue(self, items: Mapping[str, ItemInfo]) -> dict[str, ItemInfo]:
        """The catalogue as it stood at the cut: items with at least one training event, each uploaded at its
        first training event. Nothing about test-period events (which items appear later, or when) gets in."""
        first: dict[str, float] = {}
        for x in self.train:
            if x.item_id in items and (x.item_id not in first or x.timestamp < first[x.item_id]):
                first[x.item_id] = x.timestamp
        return {i: dataclasses.replace(items[i], uploaded_at=t) for i, t in sorted(first.items())}

    def train_items_by_user(self) -> dict[str, set[str]]:
        seen: dict[str, set[str]] = defaultdict(set)
        for x in self.train:
            seen[x.user_id].add(x.item_id)
        return seen

    def truth(self, positive_only: bool = True) -> dict[str, set[str]]:
        """Held-out relevant items per user (positive engagement only, by default)."""
        out: dict[str, set[str]] = defaultdict(set)
        for x in self.test:
            if not positive_only or x.positive:
                out[x.user_id].add(x.item_id)
        return dict(out)


def _by_user(events: Sequence[Interaction]) -> dict[str, list[Interaction]]:
    grouped: dict[str, list[Interaction]] = defaultdict(list)
    for x in events:
        grouped[x.user_id].append(x)
    for rows in grouped.values():
        rows.sort(key=lambda x: (x.timestamp, x.item_id))
    return grouped


def user_chronological_split(
    events: Sequence[Interaction], test_fraction: float = 0.2, min_train: int = 1, name: str = "user_chrono"
) -> Split:
    """Per-user chronological hold-out: each user's last ``test_fraction`` of events is test.

    Ties in time are broken by item id so the split is deterministic. Users with fewer than
    ``min_train + 1`` events stay entirely in train.
    """
    train: list[Interaction] = []
    test: list[Interaction] = []
    for rows in _by_user(events).values():
        n_test = int(round(len(rows) * test_fraction))
        n_test = min(max(n_test, 1), len(rows) - min_train)
        if n_test <= 0:
            train.extend(rows)
            continue
        train.extend(rows[:-n_test])
        test.extend(rows[-n_test:])
    return Split(name, train, test)


def leave_last_out(events: Sequence[Interaction], n: int = 1, name: str = "leave_last_out") -> Split:
    """Per-user: the last ``n`` events are test (users with <= n events stay in train)."""
    train: list[Interaction] = []
    test: list[Interaction] = []
    for rows in _by_user(events).values():
        if len(rows) <= n:
            train.extend(rows)
            continue
        train.extend(rows[:-n])
        test.extend(rows[-n:])
    return Split(name, train, test)


def global_temporal_split(
    events: Sequence[Interaction], test_fraction: float = 0.2, name: str = "global_temporal"
) -> Split:
    """One global cut in time: the last ``test_fraction`` of events (by time) is test.

    Only users that have at least one training event are kept in test (warm users), so every
    test user has a history for the recommender to work with.
    """
    ordered = sorted(events, key=lambda x: (x.timestamp, x.user_id, x.item_id))
    cut = int(round(len(ordered) * (1 - test_fraction)))
    cut = min(max(cut, 1), len(ordered) - 1) if len(ordered) > 1 else len(ordered)
    cutoff_ts = ordered[cut - 1].timestamp if cut else float("-inf")
    train = [x for x in ordered if x.timestamp <= cutoff_ts]
    warm = {x.user_id for x in train}
    test = [x for x in ordered if x.timestamp > cutoff_ts and x.user_id in warm]
    return Split(name, train, test)


def kfold_splits(events: Sequence[Interaction], k: int = 5, seed: int = 0, name: str = "kfold") -> list[Split]:
    """Per-user random k-fold: each user's events are dealt into ``k`` folds at random."""
    rng = random.Random(seed)
    folds: list[tuple[list[Interaction], list[Interaction]]] = [([], []) for _ in range(k)]
    grouped = _by_user(events)
    for user in sorted(grouped):
        rows = grouped[user]
        order = list(range(len(rows)))
        rng.shuffle(order)
        fold_of = {idx: pos % k for pos, idx in enumerate(order)}
        for idx, x in enumerate(rows):
            for f in range(k):
                (folds[f][1] if fold_of[idx] == f else folds[f][0]).append(x)
    return [Split(f"{name}{f}", tr, te) for f, (tr, te) in enumerate(folds)]


def validation_split(train_split: Split, test_fraction: float = 0.2, protocol: str = "user_chrono") -> Split:
    """Carve a validation split out of TRAINING data only, by the same protocol as the outer split
    (``user_chrono``: per-user chronological; ``global_time``: a global time cut inside the training period)."""
    name = f"{train_split.name}_validation"
    if protocol == "global_time":
        return global_temporal_split(train_split.train, test_fraction, name=name)
    return user_chronological_split(train_split.train, test_fraction, name=name)
