"""Backups of a SQLite deployment's data dir: create, verify, restore, and the daily scheduled one.

A backup is a folder::

    manifest.json     format, created_at, app version, alembic revision, and size + sha256 of every other file
    foryou.db         the database, copied with SQLite's online backup API (one read transaction: a consistent
                      snapshot taken while the server keeps writing, in WAL mode writers are never blocked)
    lancedb/          the vector tables, each read at one pinned version through LanceDB itself and written
                      anew (never a file copy of a table that a writer may be changing under us)
    media/            every stored media file (copied, or hard-linked to the same unchanged file of the
                      previous backup, so daily backups do not multiply the media's size)
    secret_key        the generated session/CSRF key, when the deployment uses one (sign-ins survive a restore)

What is left out, on purpose: ``models/`` and ``datasets/`` (downloadable caches), ``tmp/`` (partial uploads),
``recommender/state.snapshot`` (derived: the app replays the event log on the restored database instead), and
the backups themselves. LanceDB is read before the database, so the database copy is the newer of the two:
vector rows of videos the copy does not know are dropped, and a video published in between simply has no
vector until it is re-indexed (the recommender copes with missing vectors; the database stays the truth).

PostgreSQL deployments and media on object storage are not covered: ``create`` refuses with a message that
points to ``pg_dump`` and the storage's own versioning, rather than making a backup that silently lacks them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from app.config import Settings
from app.ops.data_dir_lock import LOCK_FILE, DataDirBusy, DataDirLock

log = logging.getLogger(__name__)

FORMAT = "foryou-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DB_FILE = "foryou.db"
LANCEDB = "lancedb"
MEDIA = "media"
SECRET = "secret_key"
SCHEDULED_PREFIX = "foryou-"
# Entries of the data dir that restore leaves in place: caches anyone can rebuild, and the migration and in-use locks.
CACHE_ENTRIES = frozenset({"models", "datasets", ".migrate.lock", LOCK_FILE})
CHUNK = 1 << 20

POSTGRES_MESSAGE = (
    "`foryou backup` covers the SQLite deployment (database, vectors and media in the data dir). This one uses "
    "PostgreSQL: back the database up with `pg_dump -Fc` (restore with `pg_restore`) and the media and LanceDB "
    "folders with your storage's own snapshots.")
REMOTE_STORAGE_MESSAGE = (
    "media and LanceDB live on object storage (FORYOU_STORAGE_URL): `foryou backup` covers a data dir on local "
    "disk only; use the bucket's versioning or replication for them.")


class BackupError(Exception):
    """A backup that cannot be made, verified or restored: reported in one message, the command exits non-zero."""


# ---- helpers -------------------------------------------------------------------------------------------
def app_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("foryou")
    except PackageNotFoundError:
        return "unknown"


def database_path(settings: Settings) -> Path:
    if not settings.is_sqlite:
        raise BackupError(POSTGRES_MESSAGE)
    if settings.storage_url:
        raise BackupError(REMOTE_STORAGE_MESSAGE)
    from sqlalchemy.engine import make_url

    name = make_url(settings.resolved_database_url).database
    if not name or name == ":memory:":
        raise BackupError("the database is in memory: there is nothing on disk to back up")
    return Path(name)


def sha256_of(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _copy_hashing(source: Path, target: Path) -> tuple[int, str]:
    """Copy a file and hash the bytes written (what the backup holds is what the manifest describes)."""
    digest, size = hashlib.sha256(), 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as src, open(target, "wb") as dst:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    shutil.copystat(source, target)
    return size, digest.hexdigest()


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) if folder.is_dir() else []


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise BackupError(f"{folder} is not a ForYou backup: it has no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as exc:
        raise BackupError(f"{path} is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a ForYou backup manifest")
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise BackupError(f"{folder} was written in backup format {manifest.get('format_version')}, newer than this"
                          f" version of ForYou reads ({FORMAT_VERSION}); restore it with a newer ForYou")
    return manifest


# ---- create --------------------------------------------------------------------------------------------
def _snapshot_lancedb(folder: Path) -> dict[str, tuple[int, object]]:
    """Each table read at one pinned version: (version, Arrow table)."""
    if not folder.is_dir():
        return {}
    import lancedb

    db = lancedb.connect(str(folder))
    tables: dict[str, tuple[int, object]] = {}
    for name in db.list_tables().tables:
        table = db.open_table(name)
        version = table.version
        table.checkout(version)  # every read below sees this version, whatever writers commit meanwhile
        tables[name] = (version, table.to_arrow())
    return tables


def _write_lancedb(target: Path, tables: dict[str, tuple[int, object]], video_ids: set[str]) -> dict:
    import lancedb
    import pyarrow as pa
    import pyarrow.compute as pc

    described: dict[str, dict] = {}
    if not tables:
        return described
    db = lancedb.connect(str(target))
    known = pa.array(sorted(video_ids), pa.string())
    for name, (version, data) in tables.items():
        column = "video_id" if "video_id" in data.column_names else "id" if name == "videos" else None
        dropped = 0
        if column is not None:
            kept = data.filter(pc.is_in(data[column], value_set=known))
            dropped, data = data.num_rows - kept.num_rows, kept
        db.create_table(name, data=data if data.num_rows else None, schema=data.schema)
        described[name] = {"rows": data.num_rows, "source_version": version, "dropped_unknown_videos": dropped}
    return described


def _sqlite_backup(source: Path, target: Path) -> None:
    src = sqlite3.connect(source, timeout=60)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # pages=-1: the whole database in one step, i.e. inside one read transaction
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file (the app turns WAL on again)
        dst.commit()
    finally:
        dst.close()
        src.close()


def _inspect_database(path: Path) -> tuple[list[str], str | None, set[str]]:
    """integrity_check's answer, the alembic revision and the video ids of a database file (opened read-only)."""
    con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        integrity = [row[0] for row in con.execute("PRAGMA integrity_check").fetchall()]
        try:
            revision = con.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.DatabaseError:
            revision = None
        try:
            video_ids = {row[0] for row in con.execute("SELECT id FROM videos")}
        except sqlite3.DatabaseError:
            video_ids = set()
    finally:
        con.close()
    return integrity, revision[0] if revision else None, video_ids


def _media_into(media_dir: Path, target: Path, previous: dict[str, dict], previous_dir: Path | None) -> dict:
    """Copy every media file (hashing the copy), or hard-link the previous backup's identical copy."""
    files: dict[str, dict] = {}
    linked = copied = 0
    for source in _files_under(media_dir):
        rel = source.relative_to(media_dir).as_posix()
        dest = target / rel
        try:
            before = previous.get(f"{MEDIA}/{rel}")
            if before is not None and previous_dir is not None and before["size"] == source.stat().st_size:
                size, digest = sha256_of(source)
                if digest == before["sha256"]:
                    try:
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        os.link(previous_dir / MEDIA / rel, dest)
                        files[rel] = {"size": size, "sha256": digest}
                        linked += 1
                        continue
                    except OSError:
                        pass  # another filesystem, or the old copy is gone: copy instead
            files[rel] = dict(zip(("size", "sha256"), _copy_hashing(source, dest), strict=True))
            copied += 1
        except FileNotFoundError:
            continue  # removed while we walked (a deleted video): the database copy decides what exists
    return {"files": files, "linked": linked, "copied": copied}


def create(settings: Settings, target: Path, *, link_dest: Path | None = None) -> dict:
    """Write a backup of the data dir into ``target`` (which must not exist, or be empty). Returns the manifest.

    The backup is assembled in ``<target>.partial`` and renamed at the end: a folder named ``target`` is always
    complete. ``link_dest``: a previous backup whose unchanged media files are hard-linked instead of copied."""
    started = time.perf_counter()
    db_path = database_path(settings)
    if not db_path.is_file():
        raise BackupError(f"no database at {db_path}: nothing to back up (is FORYOU_DATA_DIR right?)")
    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} already exists and is not empty; choose a new folder for the backup")
    previous: dict[str, dict] = {}
    if link_dest is not None:
        previous = read_manifest(link_dest).get("files", {})
    partial = target.with_name(target.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)  # an earlier attempt that died half-way
    partial.mkdir(parents=True)
    try:
        tables = _snapshot_lancedb(settings.lancedb_dir)  # before the database: see the module's docstring
        _sqlite_backup(db_path, partial / DB_FILE)
        integrity, revision, video_ids = _inspect_database(partial / DB_FILE)
        if integrity != ["ok"]:
            raise BackupError(f"the database copy fails PRAGMA integrity_check: {'; '.join(integrity[:10])}"
                              f" (the live database at {db_path} may be damaged)")
        lance = _write_lancedb(partial / LANCEDB, tables, video_ids)
        media = _media_into(settings.media_dir, partial / MEDIA, previous, link_dest)
        files = {f"{MEDIA}/{rel}": entry for rel, entry in media["files"].items()}
        secret = settings.data_dir / SECRET
        if not settings.secret_key and secret.is_file():
            shutil.copy2(secret, partial / SECRET)
            (partial / SECRET).chmod(0o600)
        for path in _files_under(partial):
            rel = path.relative_to(partial).as_posix()
            if rel not in files:
                files[rel] = dict(zip(("size", "sha256"), sha256_of(path), strict=True))
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "app_version": app_version(), "alembic_revision": revision,
            "source": {"data_dir": str(settings.data_dir.resolve()), "database": str(db_path)},
            "database": {"file": DB_FILE, "method": "sqlite3 online backup", "integrity_check": "ok",
                         "videos": len(video_ids)},
            "lancedb": {"folder": LANCEDB, "method": "each table read at a pinned version and rewritten",
                        "tables": lance},
            "media": {"folder": MEDIA, "count": len(media["files"]),
                      "bytes": sum(e["size"] for e in media["files"].values()),
                      "copied": media["copied"], "hard_linked": media["linked"],
                      "linked_from": str(link_dest) if link_dest and media["linked"] else None},
            "secret_key": (partial / SECRET).is_file(),
            "files": dict(sorted(files.items())),
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if target.exists():
            target.rmdir()
        os.replace(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    manifest["seconds"] = round(time.perf_counter() - started, 3)
    log.info("backup created", extra={"backup": str(target), "files": len(files), "seconds": manifest["seconds"]})
    return manifest


# ---- verify --------------------------------------------------------------------------------------------
def verify(folder: Path) -> list[str]:
    """Everything wrong with a backup (empty: sound): checksums, sizes, missing or unexpected files, the
    database's PRAGMA integrity_check and the LanceDB tables' row counts."""
    folder = Path(folder)
    try:
        manifest = read_manifest(folder)
    except BackupError as exc:
        return [str(exc)]
    problems: list[str] = []
    files: dict[str, dict] = manifest.get("files", {})
    for rel, entry in files.items():
        path = folder / rel
        if not path.is_file():
            problems.append(f"missing: {rel}")
            continue
        size, digest = sha256_of(path)
        if size != entry.get("size"):
            problems.append(f"wrong size: {rel} is {size} bytes, the manifest says {entry.get('size')}")
        elif digest != entry.get("sha256"):
            problems.append(f"checksum mismatch: {rel} (sha256 {digest[:12]}..., the manifest says "
                            f"{str(entry.get('sha256'))[:12]}...)")
    for path in _files_under(folder):
        rel = path.relative_to(folder).as_posix()
        if rel != MANIFEST and rel not in files:
            problems.append(f"unexpected file (not in the manifest): {rel}")
    db_file = folder / manifest.get("database", {}).get("file", DB_FILE)
    if DB_FILE not in files:
        problems.append(f"the manifest lists no database file ({DB_FILE})")
    elif db_file.is_file():
        try:
            integrity, _revision, _ids = _inspect_database(db_file)
            if integrity != ["ok"]:
                problems.append(f"{DB_FILE} fails PRAGMA integrity_check: {'; '.join(integrity[:10])}")
        except sqlite3.DatabaseError as exc:
            problems.append(f"{DB_FILE} is not a readable SQLite database ({exc})")
    tables = manifest.get("lancedb", {}).get("tables", {})
    if tables and not problems:
        try:
            import lancedb

            db = lancedb.connect(str(folder / LANCEDB))
            for name, info in tables.items():
                rows = db.open_table(name).count_rows()
                if rows != info.get("rows"):
                    problems.append(f"lancedb table {name} has {rows} rows, the manifest says {info.get('rows')}")
        except Exception as exc:  # noqa: BLE001 - any failure to read the tables back is the finding
            problems.append(f"the LanceDB tables cannot be read back ({type(exc).__name__}: {exc})")
    return problems


# ---- restore -------------------------------------------------------------------------------------------
def _has_files(path: Path) -> bool:
    if path.is_file() or path.is_symlink():
        return True
    return path.is_dir() and any(p.is_file() for p in path.rglob("*"))


def _inside(path: Path, folder: Path) -> Path | None:
    """The entry of ``folder`` that contains ``path``, if it lies inside it."""
    try:
        rel = path.resolve().relative_to(folder.resolve())
    except ValueError:
        return None
    return folder / rel.parts[0] if rel.parts else folder


def _check_revision(revision: str | None) -> None:
    if not revision:
        return
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from app.db.migrate import alembic_config

    try:
        ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(revision)
    except CommandError as exc:
        raise BackupError(f"the backup's database is at migration {revision!r}, which this version of ForYou does "
                          "not know (a newer version made it): restore it with that version") from exc


def restore(settings: Settings, folder: Path, *, force: bool = False) -> dict:
    """Verify ``folder``, then put its database, vectors, media (and secret key) into the configured data dir.

    A data dir holding data is left alone unless ``force``; then its contents are moved aside into
    ``<data dir>.before-restore-<time>`` (never deleted). Caches (models, datasets) stay where they are.
    Refused while any ForYou process works on the data dir (it holds the dir's in-use lock)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with DataDirLock(settings.data_dir) as lock:
        try:
            lock.exclusive()
        except DataDirBusy as exc:
            raise BackupError(str(exc)) from None
        return _restore_locked(settings, Path(folder), force=force)


def _restore_locked(settings: Settings, folder: Path, *, force: bool) -> dict:
    problems = verify(folder)
    if problems:
        raise BackupError(f"the backup at {folder} failed verification, nothing was restored:\n  - "
                          + "\n  - ".join(problems))
    manifest = read_manifest(folder)
    _check_revision(manifest.get("alembic_revision"))
    db_path = database_path(settings)
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    spared = {p for p in (_inside(folder, data_dir), _inside(settings.backups_dir, data_dir)) if p is not None}
    if data_dir.resolve() in {p.resolve() for p in spared}:
        raise BackupError(f"the backup lies at the top of the data dir {data_dir}; move it elsewhere first")
    entries = [e for e in data_dir.iterdir() if e.name not in CACHE_ENTRIES and e not in spared]
    outside_db = [p for p in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm"))
                  if _inside(p, data_dir) is None and p.exists()]
    occupied = [e for e in entries if _has_files(e)] + outside_db
    moved_to = None
    if occupied and not force:
        shown = ", ".join(sorted(str(p.relative_to(data_dir)) if _inside(p, data_dir) else str(p)
                                 for p in occupied)[:8])
        raise BackupError(f"the data dir {data_dir} is not empty ({shown}); restore will not overwrite it. Stop "
                          "the server, then run again with --force: the current contents are moved aside into "
                          f"{data_dir.name}.before-restore-<time>/ next to it, nothing is deleted")
    if occupied:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        moved_to = data_dir.parent / f"{data_dir.name}.before-restore-{stamp}"
        moved_to.mkdir()
        for entry in entries:
            shutil.move(str(entry), str(moved_to / entry.name))
        for path in outside_db:
            shutil.move(str(path), str(moved_to / path.name))
    else:
        for entry in entries:  # empty folders only (nothing in them to keep)
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()

    db_path.parent.mkdir(parents=True, exist_ok=True)
    staging = db_path.with_name(db_path.name + ".restoring")
    shutil.copy2(folder / DB_FILE, staging)
    os.replace(staging, db_path)
    if (folder / LANCEDB).is_dir():
        shutil.copytree(folder / LANCEDB, settings.lancedb_dir)
    media_count = 0
    if (folder / MEDIA).is_dir():
        shutil.copytree(folder / MEDIA, settings.media_dir)
        media_count = len(_files_under(settings.media_dir))
    if (folder / SECRET).is_file():
        shutil.copy2(folder / SECRET, data_dir / SECRET)
        (data_dir / SECRET).chmod(0o600)
    log.info("backup restored", extra={"backup": str(folder), "data_dir": str(data_dir)})
    return {"restored_from": str(folder), "data_dir": str(data_dir), "database": str(db_path),
            "alembic_revision": manifest.get("alembic_revision"), "created_at": manifest.get("created_at"),
            "media_files": media_count, "lancedb_tables": sorted(manifest.get("lancedb", {}).get("tables", {})),
            "secret_key": (folder / SECRET).is_file(),
            "previous_contents_moved_to": str(moved_to) if moved_to else None}


# ---- the scheduled backup ------------------------------------------------------------------------------
def complete_backups(root: Path) -> list[Path]:
    """The scheduled backups under ``root`` (complete ones: renamed from .partial, with a manifest), oldest first."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and p.name.startswith(SCHEDULED_PREFIX) and not p.name.endswith(".partial")
                  and (p / MANIFEST).is_file())


def prune(root: Path, keep: int) -> list[str]:
    """Keep the newest ``keep`` scheduled backups, remove the older ones; return what was removed."""
    backups = complete_backups(root)
    doomed = backups[:-keep] if keep > 0 else backups
    for path in doomed:
        shutil.rmtree(path)
    return [p.name for p in doomed]


def scheduled_backup(settings: Settings) -> dict:
    """The daily job: a new backup under FORYOU_BACKUP_DIR, verified, then the oldest beyond FORYOU_BACKUP_KEEP
    removed. Skipped (not failed) on deployments it does not cover."""
    if not settings.is_sqlite or settings.storage_url:
        return {"skipped": POSTGRES_MESSAGE if not settings.is_sqlite else REMOTE_STORAGE_MESSAGE}
    root = settings.backups_dir
    root.mkdir(parents=True, exist_ok=True)
    from app.server.disk import free_bytes

    db_path = database_path(settings)
    needed = db_path.stat().st_size + sum(p.stat().st_size for p in _files_under(settings.lancedb_dir))
    if free_bytes(root) - needed < settings.min_free_disk_mb * 1024 * 1024:
        raise BackupError(f"not enough free space in {root} for a backup (about {needed // 1024} KiB needed above"
                          f" the {settings.min_free_disk_mb} MB margin); no backup was made")
    for stale in root.glob(f"{SCHEDULED_PREFIX}*.partial"):  # a run that died: the job's lease says none is live
        shutil.rmtree(stale, ignore_errors=True)
    existing = complete_backups(root)
    target = root / f"{SCHEDULED_PREFIX}{datetime.now(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}"
    manifest = create(settings, target, link_dest=existing[-1] if existing else None)
    problems = verify(target)
    if problems:  # keep every older backup: this one is not one to rely on
        raise BackupError(f"the new backup {target} failed verification: {'; '.join(problems[:5])}")
    removed = prune(root, settings.backup_keep)
    return {"backup": target.name, "files": len(manifest["files"]), "media_hard_linked":
            manifest["media"]["hard_linked"], "removed": removed}


__all__ = ["BackupError", "complete_backups", "create", "prune", "read_manifest", "restore", "scheduled_backup",
           "verify"]
