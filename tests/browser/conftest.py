"""Real-browser fixtures: a live server on a tiny catalogue of real H.264 videos, and Debian chromium.

The catalogue is made at test time with the static ffmpeg (6 s, 360x640, H.264/AAC, faststart), written into
the data dir before the server starts (the recommender loads its catalogue at start-up). Without
/usr/bin/chromium the browser tests are skipped, except under CI (env var CI set), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import make_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--mute-audio"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE = {"viewport": {"width": 375, "height": 812}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
LIVE_HOSTS = ("127.0.0.1",)  # the live server answers on loopback (the app refuses unknown Host headers)

# (video id, creator, caption, hashtags, lavfi source): one creator each, so every video can be recommended.
CATALOGUE = [
    ("v_sunset01", "maya", "Golden hour over the bay #sunset #travel", ["sunset", "travel"],
     "gradients=size=360x640:rate=24:speed=0.02:c0=ff7e5f:c1=feb47b:c2=6a3093:nb_colors=3"),
    ("v_fractal2", "leo", "Zooming into infinity #math #art", ["math", "art"],
     "mandelbrot=size=360x640:rate=24:end_scale=0.02"),
    ("v_pattern3", "nina", "Test pattern ASMR, but make it colourful #retro", ["retro"],
     "testsrc2=size=360x640:rate=24"),
    ("v_lifegame4", "omar", "Conway's game of life, 6 seconds of it #science", ["science"],
     "life=size=360x640:rate=24:mold=10:ratio=0.3:death_color=#1b1b3a:life_color=#25f4ee"),
    ("v_bars00005", "zoe", "Colour bars for the purists #retro #tv", ["retro", "tv"],
     "smptehdbars=size=360x640:rate=24"),
]
CAPTIONED = "v_pattern3"
VTT = ("WEBVTT\n\n00:00:00.000 --> 00:00:03.000\nHello from the test pattern\n\n"
       "00:00:03.000 --> 00:00:06.000\nStill here\n")


def _require_chromium() -> str:
    reason = None
    if not Path(CHROMIUM).exists():
        reason = f"Debian chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright Python package is not installed"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run under CI: {reason}")
        pytest.skip(reason)
    return CHROMIUM


def _ffmpeg() -> str:
    from media.ffmpeg import default_tools

    return default_tools().ffmpeg


def make_clip(ffmpeg: str, source: str, target: Path, seconds: float = 6.0) -> None:
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"{source},format=yuv420p",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", "30", "-g", "24",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-shortest", "-movflags", "+faststart",
         str(target / "video.mp4")],
        check=True, timeout=120,
    )
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-ss", "1", "-i", str(target / "video.mp4"),
                    "-frames:v", "1", "-q:v", "4", str(target / "poster.jpg")], check=True, timeout=60)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The catalogue's media, made once per test session."""
    _require_chromium()
    folder = tmp_path_factory.mktemp("clips")
    ffmpeg = _ffmpeg()
    threads = [threading.Thread(target=make_clip, args=(ffmpeg, source, folder / vid))
               for vid, _, _, _, source in CATALOGUE]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for vid, *_ in CATALOGUE:
        assert (folder / vid / "video.mp4").is_file(), f"ffmpeg could not make {vid}"
    (folder / CAPTIONED / "captions.vtt").write_text(VTT)
    return folder


def seed_catalogue(settings, clips: Path) -> None:  # noqa: ANN001
    """Migrate the database and write the catalogue rows and files (before the server starts)."""
    from app.db.migrate import upgrade

    upgrade(settings)
    db = sqlite3.connect(settings.data_dir / "foryou.db")
    now = datetime.now(UTC)
    try:
        for index, (vid, creator, caption, tags, _) in enumerate(CATALOGUE):
            uid = f"u_{creator}"
            created = (now - timedelta(minutes=10 * (index + 1))).strftime("%Y-%m-%d %H:%M:%S.%f")
            db.execute("INSERT INTO users (id, username, display_name, is_guest, role, bio, status, demographics,"
                       " preferences, created_at, last_seen_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                       (uid, creator, creator.title(), False, "user", f"Hi, I'm {creator.title()}.", "active",
                        "{}", "{}", created, created))
            db.execute("INSERT INTO videos (id, creator_id, created_at, caption, hashtags, topic, duration,"
                       " size_bytes, width, height, state, moderation, language, transcript, metadata, ready_at)"
                       " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       (vid, uid, created, caption, json.dumps(tags), tags[0], 6.0,
                        (clips / vid / "video.mp4").stat().st_size, 360, 640, "ready", "ok", "en",
                        "hello from the test pattern" if vid == CAPTIONED else "", "{}", created))
            shutil.copytree(clips / vid, settings.media_dir / vid, dirs_exist_ok=True)
        db.commit()
    finally:
        db.close()


@dataclass
class LiveServer:
    url: str
    settings: object
    db_path: Path

    def query(self, sql: str, *args: object) -> list[tuple]:
        connection = sqlite3.connect(self.db_path, timeout=10)
        try:
            return connection.execute(sql, args).fetchall()
        finally:
            connection.close()

    def wait_for(self, sql: str, *args: object, timeout: float = 8.0) -> list[tuple]:
        """Poll until the query returns rows (events are written in batches, beacons arrive a bit later)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.query(sql, *args)
            if rows or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, clips: Path) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("live") / "data", run_migrations_on_start=False,
                             allowed_hosts=LIVE_HOSTS)
    settings.ensure_dirs()
    # Alembic runs its own event loop: a thread of its own (Playwright's sync API owns this thread's loop).
    seeding = threading.Thread(target=seed_catalogue, args=(settings, clips))
    seeding.start()
    seeding.join()
    assert (settings.media_dir / CATALOGUE[0][0] / "video.mp4").is_file(), "seeding the catalogue failed"
    with serving(settings) as server:
        yield server


@contextmanager
def serving(settings) -> Iterator[LiveServer]:  # noqa: ANN001
    """The app under uvicorn on a free loopback port, in a background thread, for as long as the block runs."""
    import uvicorn

    from app.server.app import create_app

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", access_log=False))
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", settings, settings.data_dir / "foryou.db")
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="session")
def browser():  # noqa: ANN201
    executable = _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def phone(browser, live_server):  # noqa: ANN001, ANN201
    context = browser.new_context(base_url=live_server.url, **PHONE)
    yield context
    context.close()


@pytest.fixture
def desktop(browser, live_server):  # noqa: ANN001, ANN201
    context = browser.new_context(base_url=live_server.url, **DESKTOP)
    yield context
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
