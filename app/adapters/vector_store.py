"""LanceDB: the derived vector index of videos and transcript segments (SQLite stays the source of truth).

Tables: ``videos`` (one row per ready video: its content vector, optional visual vector and filterable
metadata) and ``transcript_segments`` (timed transcript lines with text vectors, for search). Writes are
upserts keyed on ids, so re-running an indexing step never duplicates rows. Vector sizes are fixed by the
models that made them; when the configured model changes, the table is rebuilt rather than mixed.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    import lancedb

VIDEOS = "videos"
SEGMENTS = "transcript_segments"


@dataclass
class VideoVectors:
    video_id: str
    creator_id: str
    topic: str
    hashtags: list[str]
    caption: str
    duration: float
    created_at: float  # unix seconds
    content_vector: np.ndarray
    content_model: str
    visual_vector: np.ndarray | None = None
    visual_model: str = ""


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class VectorStore:
    def __init__(self, path: Path | str, storage_options: dict[str, str] | None = None) -> None:
        """``path``: a folder, or an object-store URI (``s3://bucket/prefix/lancedb``) with its storage options."""
        if isinstance(path, Path):
            path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.storage_options = storage_options or None
        self._db: lancedb.DBConnection | None = None
        self._connecting = threading.Lock()
        self._lock = threading.Lock()  # LanceDB tables tolerate concurrent readers; we serialise our writers

    @property
    def db(self) -> lancedb.DBConnection:
        """Connected on first use: importing lancedb costs seconds of a restart that may not need it."""
        if self._db is None:
            with self._connecting:
                if self._db is None:
                    import lancedb

                    self._db = lancedb.connect(str(self.path), storage_options=self.storage_options)
        return self._db

    def fingerprint(self) -> str | None:
        """What the local folder holds (every file's name, size and modification time), without opening
        LanceDB: any write, by any process, leaves a new file behind. None for an object store (not known)."""
        if not isinstance(self.path, Path):
            return None
        entries = []
        for folder, _dirs, files in os.walk(self.path):
            for name in files:
                path = os.path.join(folder, name)
                try:
                    stat = os.stat(path)
                except OSError:  # removed while we looked (a compaction): the answer is no longer stable anyway
                    return None
                entries.append(f"{os.path.relpath(path, self.path)}\t{stat.st_size}\t{stat.st_mtime_ns}")
        return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()

    def _tables(self) -> list[str]:
        return list(self.db.list_tables().tables)

    # ---- schema -----------------------------------------------------------------------------------
    @staticmethod
    def _videos_schema(content_dim: int, visual_dim: int) -> pa.Schema:
        return pa.schema([
            pa.field("id", pa.string()),
            pa.field("creator_id", pa.string()),
            pa.field("topic", pa.string()),
            pa.field("hashtags", pa.list_(pa.string())),
            pa.field("caption", pa.string()),
            pa.field("duration", pa.float32()),
            pa.field("created_at", pa.float64()),
            pa.field("vector", pa.list_(pa.float32(), content_dim)),
            pa.field("content_model", pa.string()),
            pa.field("visual_vector", pa.list_(pa.float32(), visual_dim)),
            pa.field("visual_model", pa.string()),
        ])

    @staticmethod
    def _segments_schema(dim: int) -> pa.Schema:
        return pa.schema([
            pa.field("id", pa.string()),
            pa.field("video_id", pa.string()),
            pa.field("start", pa.float32()),
            pa.field("end", pa.float32()),
            pa.field("text", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), dim)),
            pa.field("model", pa.string()),
        ])

    # ---- writes -----------------------------------------------------------------------------------
    def upsert_video(self, item: VideoVectors) -> None:
        visual = item.visual_vector
        visual_dim = len(visual) if visual is not None else 1
        row = {
            "id": item.video_id,
            "creator_id": item.creator_id,
            "topic": item.topic or "",
            "hashtags": list(item.hashtags),
            "caption": item.caption,
            "duration": float(item.duration),
            "created_at": float(item.created_at),
            "vector": np.asarray(item.content_vector, dtype=np.float32).tolist(),
            "content_model": item.content_model,
            "visual_vector": (np.asarray(visual, dtype=np.float32).tolist() if visual is not None else [0.0]),
            "visual_model": item.visual_model if visual is not None else "",
        }
        schema = self._videos_schema(len(row["vector"]), visual_dim)
        with self._lock:
            table = self._existing_or_new(VIDEOS, schema)
            table_visual_dim = table.schema.field("visual_vector").type.list_size
            if visual is None and table_visual_dim != visual_dim:
                # No visual vector, in a table that has them: a zero placeholder of the table's size; the empty
                # visual_model says there is none (a zero vector matches nothing under cosine).
                row["visual_vector"] = [0.0] * table_visual_dim
            table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(
                pa.Table.from_pylist([row], schema=table.schema)
            )

    def _existing_or_new(self, name: str, schema: pa.Schema):  # noqa: ANN202
        # A video without a visual vector must not force a rebuild of a table that has them.
        if name in self._tables():
            table = self.db.open_table(name)
            current = table.schema
            if current.field("vector").type == schema.field("vector").type and (
                name != VIDEOS or schema.field("visual_vector").type.list_size == 1
                or current.field("visual_vector").type == schema.field("visual_vector").type
            ):
                return table
            self.db.drop_table(name)
        return self.db.create_table(name, schema=schema)

    def replace_segments(self, video_id: str, segments: list[dict], vectors: np.ndarray, model: str) -> None:
        """Store a video's transcript lines (deleting any earlier copy first, so re-runs don't duplicate)."""
        with self._lock:
            if SEGMENTS in self._tables():
                self.db.open_table(SEGMENTS).delete(f"video_id = {_quote(video_id)}")
            if not segments:
                return
            schema = self._segments_schema(vectors.shape[1])
            table = self._existing_or_new(SEGMENTS, schema)
            rows = [
                {"id": f"{video_id}:{i}", "video_id": video_id, "start": float(seg["start"]),
                 "end": float(seg["end"]), "text": seg["text"], "vector": vectors[i].astype(np.float32).tolist(),
                 "model": model}
                for i, seg in enumerate(segments)
            ]
            table.add(pa.Table.from_pylist(rows, schema=table.schema))

    def delete_video(self, video_id: str) -> None:
        with self._lock:
            for name in (VIDEOS, SEGMENTS):
                if name in self._tables():
                    column = "id" if name == VIDEOS else "video_id"
                    self.db.open_table(name).delete(f"{column} = {_quote(video_id)}")

    # ---- reads ------------------------------------------------------------------------------------
    def all_videos(self) -> list[dict]:
        if VIDEOS not in self._tables():
            return []
        return self.db.open_table(VIDEOS).to_arrow().to_pylist()

    def vector_of(self, video_id: str) -> np.ndarray | None:
        if VIDEOS not in self._tables():
            return None
        rows = self.db.open_table(VIDEOS).search().where(f"id = {_quote(video_id)}").limit(1).to_list()
        return np.asarray(rows[0]["vector"], dtype=np.float32) if rows else None

    def count(self, name: str = VIDEOS, where: str | None = None) -> int:
        if name not in self._tables():
            return 0
        return self.db.open_table(name).count_rows(where)

    def search_videos(self, vector: np.ndarray, k: int = 20) -> list[dict]:
        if VIDEOS not in self._tables():
            return []
        return self.db.open_table(VIDEOS).search(np.asarray(vector, dtype=np.float32)).limit(k).to_list()

    def search_segments(self, vector: np.ndarray, k: int = 20) -> list[dict]:
        if SEGMENTS not in self._tables():
            return []
        return self.db.open_table(SEGMENTS).search(np.asarray(vector, dtype=np.float32)).limit(k).to_list()
