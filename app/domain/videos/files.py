"""Serving video files with HTTP Range support (Safari will not play a video without 206 responses)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from litestar import Response
from litestar.response import Stream

from app.adapters.object_storage import S3Storage, StoredObject

CHUNK = 256 * 1024
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
CONTENT_TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".vtt": "text/vtt; charset=utf-8", ".webp": "image/webp"}


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """(start, end inclusive) for a single satisfiable range; None without one; "invalid" when unsatisfiable."""
    if not header:
        return None
    match = RANGE_RE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None  # multi-range or malformed: ignore the header and send the whole file (RFC 9110 allows it)
    first, last = match.groups()
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:
        suffix = int(last)
        if suffix == 0:
            return "invalid"
        start, end = max(size - suffix, 0), size - 1
    if start >= size or start > end:
        return "invalid"
    return start, end


async def _read(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as handle:
        await handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = await handle.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


async def _read_object(storage: S3Storage, video_id: str, name: str, start: int, end: int
                       ) -> AsyncIterator[bytes]:
    chunks = await anyio.to_thread.run_sync(storage.read, video_id, name, start, end)
    while True:
        chunk = await anyio.to_thread.run_sync(next, chunks, None)
        if chunk is None:
            return
        yield chunk


def object_response(storage: S3Storage, video_id: str, name: str, stored: StoredObject, range_header: str | None,
                    if_none_match: str | None = None, max_age: int = 3600, with_body: bool = True) -> Response:
    """The same answers as ``file_response`` for a file on object storage: the store serves the range asked for."""
    size = stored.size
    etag = stored.etag or '"' + hashlib.sha1(f"{video_id}/{name}-{size}".encode()).hexdigest()[:20] + '"'
    headers = {"Accept-Ranges": "bytes", "ETag": etag, "Cache-Control": f"private, max-age={max_age}"}
    media_type = CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")
    if if_none_match == etag and not range_header:
        return Response(b"", status_code=304, headers=headers)
    wanted = parse_range(range_header, size)
    if wanted == "invalid":
        return Response(b"", status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if not with_body:
        start, end = (0, size - 1) if wanted is None else wanted
        if wanted is not None:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(end - start + 1)
        return Response(b"", status_code=200 if wanted is None else 206, media_type=media_type, headers=headers)
    if wanted is None or size == 0:
        headers["Content-Length"] = str(size)
        body = _read_object(storage, video_id, name, 0, size - 1) if size else iter([b""])
        return Stream(body, media_type=media_type, headers=headers)
    start, end = wanted
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    return Stream(_read_object(storage, video_id, name, start, end), status_code=206, media_type=media_type,
                  headers=headers)


def file_response(path: Path, range_header: str | None, if_none_match: str | None = None,
                  max_age: int = 3600, with_body: bool = True) -> Response:
    """The file, a range of it (206), 304 or 416; ``with_body=False`` answers HEAD with the same headers."""
    stat = os.stat(path)
    size = stat.st_size
    etag = '"' + hashlib.sha1(f"{stat.st_ino}-{stat.st_mtime_ns}-{size}".encode()).hexdigest()[:20] + '"'
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Cache-Control": f"private, max-age={max_age}",
    }
    media_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
    if if_none_match == etag and not range_header:
        return Response(b"", status_code=304, headers=headers)
    wanted = parse_range(range_header, size)
    if wanted == "invalid":
        return Response(b"", status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    status, (start, end) = (200, (0, size - 1)) if wanted is None else (206, wanted)
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    if not with_body:
        return Response(b"", status_code=status, media_type=media_type, headers=headers)
    return Stream(_read(path, start, end - start + 1), status_code=status, media_type=media_type, headers=headers)
