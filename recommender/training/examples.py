"""Training examples: features are logged when an item is first exposed to a user (so they describe what
the ranker knew at that moment), and labels accumulate from that user's events on the item until the
label window closes."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ..events import watch_ratio
from ..ranking.model import TASKS
from ..types import Event

T = {task: i for i, task in enumerate(TASKS)}
_LABEL_OF_EVENT = {
    "complete_view": "complete",
    "like": "like",
    "share": "share",
    "comment": "comment",
    "follow": "follow",
    "skip": "skip",
    "hide": "negative",
    "report": "negative",
}


@dataclass
class PendingExample:
    opened_at: float
    features: np.ndarray
    labels: np.ndarray


def apply_label(labels: np.ndarray, event: Event, duration: float) -> None:
    if event.event_type in ("view", "complete_view"):
        ratio = watch_ratio(event, duration)
        if ratio is not None:
            labels[T["watch"]] = max(labels[T["watch"]], min(ratio, 1.0))
            if ratio >= 0.95:
                labels[T["complete"]] = 1.0
    if event.event_type == "unlike":
        labels[T["like"]] = 0.0
    task = _LABEL_OF_EVENT.get(event.event_type)
    if task is not None:
        labels[T[task]] = 1.0


MAX_PENDING = 100_000  # if the training job is not scheduled, old exposures are closed on the way


class ExampleBuffer:
    def __init__(self, max_examples: int) -> None:
        self.pending: dict[tuple[str, str], PendingExample] = {}
        self.times: deque[float] = deque(maxlen=max_examples)
        self.features: deque[np.ndarray] = deque(maxlen=max_examples)
        self.labels: deque[np.ndarray] = deque(maxlen=max_examples)

    def __len__(self) -> int:
        return len(self.times)

    def open(self, user_id: str, item_id: str, at: float, features: np.ndarray) -> None:
        key = (user_id, item_id)
        previous = self.pending.pop(key, None)
        if previous is not None:
            self._finish(previous)
        self.pending[key] = PendingExample(at, features, np.zeros(len(TASKS), dtype=np.float32))
        if len(self.pending) > MAX_PENDING:
            oldest = sorted(example.opened_at for example in self.pending.values())[len(self.pending) // 2]
            self.close_before(oldest)

    def label(self, user_id: str, item_id: str, event: Event, duration: float) -> None:
        example = self.pending.get((user_id, item_id))
        if example is not None:
            apply_label(example.labels, event, duration)

    def close_before(self, cutoff: float) -> int:
        """Finish every pending example opened before ``cutoff``; returns how many."""
        done = [key for key, example in self.pending.items() if example.opened_at < cutoff]
        for key in done:
            self._finish(self.pending.pop(key))
        return len(done)

    def _finish(self, example: PendingExample) -> None:
        self.times.append(example.opened_at)
        self.features.append(example.features)
        self.labels.append(example.labels)

    def since(self, start: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Finished examples opened after ``start``, in time order: (times, X, Y)."""
        times = np.fromiter(self.times, dtype=np.float64, count=len(self.times))
        keep = np.flatnonzero(times > start)
        if not len(keep):
            return np.zeros(0), np.zeros((0, 0), np.float32), np.zeros((0, len(TASKS)), np.float32)
        order = keep[np.argsort(times[keep], kind="stable")]
        features = list(self.features)
        labels = list(self.labels)
        X = np.stack([features[i] for i in order]).astype(np.float32)
        Y = np.stack([labels[i] for i in order]).astype(np.float32)
        return times[order], X, Y
