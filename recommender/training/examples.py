"""Training examples in the event log's terms: every served card (an ``impression``) is an example, and its
labels are what the same user did with the same item later in the same session (sessions end after
``session_gap`` seconds without any event from the user, the app's 30-minute rule).

``SessionLabeler`` is the one builder: the live engine feeds it each event as it arrives (attaching the
ranking features it had at exposure time), and ``label_log`` runs it over a stored or replayed log. An item
reached without an impression (a shared link, a log that has no impressions) opens its example on its first
exposure event in the session, with position -1 and source "".
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from ..events import EXPOSURE_EVENTS, watch_ratio
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
COMPLETE_RATIO = 0.95


@dataclass
class Example:
    user_id: str
    item_id: str
    opened_at: float
    session_start: float
    duration: float
    position: int = -1
    source: str = ""
    propensity: float | None = None
    variant: str | None = None
    device: str | None = None
    labels: np.ndarray = field(default_factory=lambda: np.zeros(len(TASKS), dtype=np.float32))
    watch_seconds: float = 0.0  # the longest single view (D2Q's raw target)
    features: np.ndarray | None = None

    @property
    def session(self) -> tuple[str, float]:
        return (self.user_id, self.session_start)


def apply_label(example: Example, event: Event) -> None:
    labels = example.labels
    if event.event_type in ("view", "complete_view", "skip"):  # a skip may say how long it took
        ratio = watch_ratio(event, example.duration)
        if ratio is not None:
            labels[T["watch"]] = max(labels[T["watch"]], min(ratio, 1.0))
            if ratio >= COMPLETE_RATIO:
                labels[T["complete"]] = 1.0
        seconds = event.watch_duration if event.watch_duration is not None else (
            example.duration if event.event_type == "complete_view" else 0.0)
        example.watch_seconds = max(example.watch_seconds, float(seconds))
    if event.event_type == "unlike":
        labels[T["like"]] = 0.0
    task = _LABEL_OF_EVENT.get(event.event_type)
    if task is not None:
        labels[T[task]] = 1.0


def _propensity(info: dict) -> float | None:
    value = info.get("propensity")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class SessionLabeler:
    """Open examples per user, closed (handed to ``on_finish``) when the user's session ends."""

    def __init__(self, session_gap: float, on_finish: Callable[[Example], None],
                 max_open: int = 100_000) -> None:
        self.session_gap = session_gap
        self.on_finish = on_finish
        self.max_open = max_open  # if nobody flushes, the idlest users' sessions are closed on the way
        self.open: dict[str, dict[str, Example]] = {}  # user -> item -> example
        self.session_start: dict[str, float] = {}
        self.last_event: dict[str, float] = {}
        self.n_open = 0

    def observe(self, event: Event, duration: float | None,
                features: Callable[[], np.ndarray] | None = None) -> Example | None:
        """Apply one event (in time order per user); returns the example it opened, if any. ``duration``:
        the item's, None when the item is unknown. ``features``: called once when an example opens; when it
        is None no example opens (the event still labels open ones)."""
        user = event.user_id
        last = self.last_event.get(user)
        if last is None or event.timestamp - last > self.session_gap:
            if last is not None:
                self.close_user(user)
            self.session_start[user] = event.timestamp
        self.last_event[user] = event.timestamp if last is None else max(event.timestamp, last)
        if event.item_id is None or duration is None:
            return None
        items = self.open.setdefault(user, {})
        example = items.get(event.item_id)
        opened = None
        reopen = event.event_type == "impression" and example is not None
        if (example is None or reopen) and event.event_type in EXPOSURE_EVENTS and features is not None:
            if reopen:  # the same card served again in one session: a new example from here on
                self.on_finish(items.pop(event.item_id))
                self.n_open -= 1
            info = event.info or {}
            position = info.get("position")
            example = opened = Example(
                user, event.item_id, event.timestamp, self.session_start[user], duration,
                position=int(position) if isinstance(position, int | float) else -1,
                source=str(info.get("source") or ""), propensity=_propensity(info),
                variant=info.get("variant"), device=info.get("device"), features=features(),
            )
            items[event.item_id] = example
            self.n_open += 1
            if self.n_open > self.max_open:
                self._close_idlest()
        if example is not None:
            apply_label(example, event)
        return opened

    def close_user(self, user: str) -> int:
        items = self.open.pop(user, {})
        for example in sorted(items.values(), key=lambda e: e.opened_at):
            self.on_finish(example)
        self.n_open -= len(items)
        return len(items)

    def close_idle(self, now: float) -> int:
        """Close the sessions of users idle for longer than the gap as of ``now``; returns examples closed."""
        idle = [u for u, at in self.last_event.items() if now - at > self.session_gap]
        closed = sum(self.close_user(u) for u in idle)
        for user in idle:  # their next event starts a new session anyway: forget them (guests come and go)
            del self.last_event[user]
            self.session_start.pop(user, None)
        return closed

    def close_all(self) -> int:
        return sum(self.close_user(u) for u in list(self.open))

    def _close_idlest(self) -> None:
        by_idle = sorted(self.open, key=lambda u: self.last_event.get(u, 0.0))
        for user in by_idle[: max(1, len(by_idle) // 2)]:
            self.close_user(user)


def label_log(events: Iterable[Event], durations: dict[str, float], session_gap: float = 1800.0
              ) -> list[Example]:
    """Every example of a whole log (impressions and first exposures, labelled within their session), in
    the order they closed. ``durations``: item id -> seconds; events on other items are ignored."""
    finished: list[Example] = []
    labeler = SessionLabeler(session_gap, finished.append, max_open=10**9)
    for event in sorted(events, key=lambda e: e.timestamp):
        labeler.observe(event, durations.get(event.item_id) if event.item_id else None, features=_no_features)
    labeler.close_all()
    return finished


def _no_features() -> np.ndarray:
    return np.zeros(0, dtype=np.float32)


@dataclass(frozen=True)
class TrainingSet:
    """Finished examples in time order, as arrays."""

    times: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    watch_seconds: np.ndarray
    durations: np.ndarray
    sessions: np.ndarray  # an integer id per (user, session start): the groups for ranking metrics
    positions: np.ndarray

    def __len__(self) -> int:
        return len(self.times)

    def slice(self, part: slice) -> TrainingSet:
        return TrainingSet(self.times[part], self.X[part], self.Y[part], self.watch_seconds[part],
                           self.durations[part], self.sessions[part], self.positions[part])


class ExampleBuffer:
    """The live engine's examples: a ``SessionLabeler`` whose finished examples (with features) are kept,
    newest ``max_examples``."""

    def __init__(self, max_examples: int, session_gap: float = 1800.0) -> None:
        self.finished: deque[Example] = deque(maxlen=max_examples)
        self.labeler = SessionLabeler(session_gap, self._finish)

    def __len__(self) -> int:
        return len(self.finished)

    # Snapshots pickle the buffer: hundreds of thousands of examples, each with two small arrays, took seconds to
    # unpickle one by one; as columns (one matrix of labels, one of features) they load in a fraction of that.
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        finished = list(self.finished)
        widths = {len(e.features) for e in finished}
        if len(widths) != 1:  # empty, or mixed widths across a feature change: plain pickling
            return state
        state["finished"] = {
            "maxlen": self.finished.maxlen,
            "scalars": [tuple(getattr(e, name) for name in _SCALAR_FIELDS) for e in finished],
            "labels": np.stack([e.labels for e in finished]),
            "features": np.stack([e.features for e in finished]),
        }
        return state

    def __setstate__(self, state: dict) -> None:
        columns = state.get("finished")
        if isinstance(columns, dict):
            examples = (Example(**dict(zip(_SCALAR_FIELDS, scalars, strict=True)), labels=labels, features=features)
                        for scalars, labels, features
                        in zip(columns["scalars"], columns["labels"], columns["features"], strict=True))
            state = {**state, "finished": deque(examples, maxlen=columns["maxlen"])}
        self.__dict__.update(state)

    def _finish(self, example: Example) -> None:
        if example.features is not None and len(example.features):
            self.finished.append(example)

    def observe(self, event: Event, duration: float | None, features: Callable[[], np.ndarray] | None) -> None:
        self.labeler.observe(event, duration, features)

    def close_idle(self, now: float) -> int:
        return self.labeler.close_idle(now)

    def since(self, start: float) -> TrainingSet:
        """Finished examples opened after ``start``, in time order (a page's cards share a timestamp: then by
        user and position, so that the same log always gives the same order, validation tail and holdout)."""
        chosen = sorted((e for e in self.finished if e.opened_at > start),
                        key=lambda e: (e.opened_at, e.user_id, e.position, e.item_id))
        return to_arrays(chosen)


# Example's fields but its two arrays: a snapshot stores these per example and the arrays as two matrices.
_SCALAR_FIELDS = tuple(f.name for f in dataclasses.fields(Example) if f.name not in ("labels", "features"))


def to_arrays(examples: list[Example]) -> TrainingSet:
    n = len(examples)
    width = len(examples[0].features) if n and examples[0].features is not None else 0
    session_ids: dict[tuple[str, float], int] = {}
    return TrainingSet(
        times=np.array([e.opened_at for e in examples], dtype=np.float64),
        X=np.stack([e.features for e in examples]).astype(np.float32) if n else np.zeros((0, width), np.float32),
        Y=np.stack([e.labels for e in examples]).astype(np.float32) if n else np.zeros((0, len(TASKS)), np.float32),
        watch_seconds=np.array([e.watch_seconds for e in examples], dtype=np.float64),
        durations=np.array([e.duration for e in examples], dtype=np.float64),
        sessions=np.array([session_ids.setdefault(e.session, len(session_ids)) for e in examples], dtype=np.int64),
        positions=np.array([e.position for e in examples], dtype=np.int64),
    )
