"""Where a video's files live: the local media folder (the default), or an S3-compatible object store.

With ``FORYOU_STORAGE_URL=s3://bucket/prefix`` the local media folder becomes scratch space: an upload's
original is pushed to ``<prefix>/media/<video id>/original`` before its jobs are queued, a media worker pulls
what a step needs before running it and pushes what the step wrote afterwards (so the next step may run on
another machine), and web replicas serve the files from the store, forwarding HTTP Range requests (proxied:
the page's Content-Security-Policy stays same-origin and private videos stay behind the app's access check).
LanceDB keeps its tables at ``s3://bucket/prefix/lancedb`` through its own object-store support.

Any S3 API works (Garage, SeaweedFS, AWS, ...): endpoint, keys and region come from the settings.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

log = logging.getLogger(__name__)

MANIFEST = ".pushed.json"  # in each local folder: what was last pushed (size, mtime), so unchanged files stay put
CHUNK = 256 * 1024


@dataclass(frozen=True)
class StoredObject:
    size: int
    etag: str


class LocalStorage:
    """The media folder is the store: nothing to push, pull or proxy."""

    remote = False

    def start(self) -> None:
        return None

    def push(self, video_id: str, folder: Path) -> int:
        return 0

    def pull(self, video_id: str, folder: Path) -> int:
        return 0

    def prune(self, video_id: str, folder: Path) -> int:
        return 0

    def delete(self, video_id: str) -> int:
        return 0


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ("bucket", "some/prefix"); a clear error for anything else."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"FORYOU_STORAGE_URL={url!r}: expected s3://bucket[/prefix]")
    return parsed.netloc, parsed.path.strip("/")


class S3Storage:
    remote = True

    def __init__(self, url: str, endpoint: str = "", access_key: str = "", secret_key: str = "",
                 region: str = "us-east-1") -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        self.endpoint = endpoint
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self._client = None

    @property
    def client(self):  # noqa: ANN201 - botocore's generated client class
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3", endpoint_url=self.endpoint or None, aws_access_key_id=self.access_key or None,
                aws_secret_access_key=self.secret_key or None, region_name=self.region,
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"},
                              max_pool_connections=32),
            )
        return self._client

    # ---- keys ------------------------------------------------------------------------------------------
    def _base(self, video_id: str) -> str:
        if not video_id or "/" in video_id or video_id.startswith("."):
            raise ValueError(f"not a video id: {video_id!r}")
        return "/".join(part for part in (self.prefix, "media", video_id) if part) + "/"

    def key(self, video_id: str, name: str) -> str:
        return self._base(video_id) + name

    def start(self) -> None:
        """Check the bucket answers, creating it on a first start (a clear message now rather than at the first
        upload)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                    raise
                self.client.create_bucket(Bucket=self.bucket)
                log.info("bucket created", extra={"bucket": self.bucket})
        except (ClientError, BotoCoreError) as exc:
            raise RuntimeError(f"object storage s3://{self.bucket} at {self.endpoint or 'AWS'} is not usable: "
                               f"{exc}") from exc

    # ---- folders -----------------------------------------------------------------------------------------
    @staticmethod
    def _local_files(folder: Path) -> dict[str, Path]:
        if not folder.is_dir():
            return {}
        return {path.relative_to(folder).as_posix(): path for path in folder.rglob("*")
                if path.is_file() and path.name != MANIFEST and not path.name.endswith(".tmp")}

    @staticmethod
    def _manifest(folder: Path) -> dict[str, list[int]]:
        try:
            return json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            return {}

    @staticmethod
    def _write_manifest(folder: Path, manifest: dict[str, list[int]]) -> None:
        tmp = folder / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest))
        os.replace(tmp, folder / MANIFEST)

    def push(self, video_id: str, folder: Path) -> int:
        """Upload every file of ``folder`` that is new or changed since the last push. Returns how many."""
        manifest = self._manifest(folder)
        pushed = 0
        for name, path in sorted(self._local_files(folder).items()):
            stat = path.stat()
            mark = [stat.st_size, stat.st_mtime_ns]
            if manifest.get(name) == mark:
                continue
            self.client.upload_file(str(path), self.bucket, self.key(video_id, name))
            manifest[name] = mark
            pushed += 1
        if pushed:
            self._write_manifest(folder, manifest)
        return pushed

    def _remote(self, video_id: str) -> dict[str, int]:
        base = self._base(video_id)
        found: dict[str, int] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
            for entry in page.get("Contents", []):
                found[entry["Key"][len(base):]] = int(entry["Size"])
        return found

    def pull(self, video_id: str, folder: Path) -> int:
        """Download what the store has and ``folder`` lacks (or holds at another size). Returns how many."""
        local = self._local_files(folder)
        manifest = self._manifest(folder)
        pulled = 0
        for name, size in self._remote(video_id).items():
            path = local.get(name)
            if path is not None and path.stat().st_size == size:
                continue
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".tmp")
            self.client.download_file(self.bucket, self.key(video_id, name), str(partial))
            os.replace(partial, target)
            stat = target.stat()
            manifest[name] = [stat.st_size, stat.st_mtime_ns]
            pulled += 1
        if pulled:
            self._write_manifest(folder, manifest)
        return pulled

    def prune(self, video_id: str, folder: Path) -> int:
        """Delete from the store what ``folder`` no longer has (intermediates removed once a video is ready)."""
        local = self._local_files(folder)
        gone = [name for name in self._remote(video_id) if name not in local]
        self._delete_keys([self.key(video_id, name) for name in gone])
        if gone:
            manifest = self._manifest(folder)
            self._write_manifest(folder, {k: v for k, v in manifest.items() if k not in gone})
        return len(gone)

    def delete(self, video_id: str) -> int:
        names = list(self._remote(video_id))
        self._delete_keys([self.key(video_id, name) for name in names])
        return len(names)

    def _delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = keys[start:start + 1000]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch],
                                                                   "Quiet": True})

    # ---- serving -----------------------------------------------------------------------------------------
    def stat(self, video_id: str, name: str) -> StoredObject | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(video_id, name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return StoredObject(size=int(head["ContentLength"]), etag=head.get("ETag", ""))

    def read(self, video_id: str, name: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start``..``end`` (inclusive) of one object, in chunks (a ranged GET: nothing is buffered)."""
        body = self.client.get_object(Bucket=self.bucket, Key=self.key(video_id, name),
                                      Range=f"bytes={start}-{end}")["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    # ---- LanceDB -----------------------------------------------------------------------------------------
    def lancedb_location(self) -> tuple[str, dict[str, str]]:
        """LanceDB's URI and storage options for the same bucket (its own object-store client reads them)."""
        uri = "s3://" + "/".join(part for part in (self.bucket, self.prefix, "lancedb") if part)
        options = {"region": self.region}
        if self.endpoint:
            options["endpoint"] = self.endpoint
            options["allow_http"] = "true" if self.endpoint.startswith("http://") else "false"
        if self.access_key:
            options["aws_access_key_id"] = self.access_key
            options["aws_secret_access_key"] = self.secret_key
        return uri, options


MediaStorage = LocalStorage | S3Storage


def storage_for(url: str, endpoint: str = "", access_key: str = "", secret_key: str = "",
                region: str = "us-east-1") -> MediaStorage:
    if not url:
        return LocalStorage()
    return S3Storage(url, endpoint, access_key, secret_key, region)
