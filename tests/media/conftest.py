"""Fixtures for media tests: videos are generated at test time with the static ffmpeg's lavfi sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from media import ffmpeg as ff
from tests.media.helpers import FIXTURES, make_video


@pytest.fixture(scope="session")
def tools() -> ff.FFmpegTools:
    return ff.locate()


@pytest.fixture(scope="session")
def videos(tools, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    return {
        "basic": make_video(tools, d / "basic.mp4"),
        "silent": make_video(tools, d / "silent.mp4", audio=None),
        "hd": make_video(tools, d / "hd.mp4", size="1920x1080", duration=2.0),
        "vertical": make_video(tools, d / "vertical.mp4", size="1080x1920", duration=2.0),
        "odd": make_video(tools, d / "odd.webm", size="321x241", duration=1.0, codec="libvpx", audio=None,
                          extra=["-deadline", "realtime", "-cpu-used", "8"]),
        "long20": make_video(tools, d / "long20.mp4", size="320x240", duration=20.0, rate=10),
        "speech": make_video(tools, d / "speech.mp4", size="320x240", duration=5.25,
                             audio_file=FIXTURES / "speech_slt.wav"),
    }


@pytest.fixture(scope="session")
def speech_meta() -> dict:
    return json.loads((FIXTURES / "speech.json").read_text())


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def registry(models_dir):
    """A registry with real Whisper tiny.en (converted offline) and the real sentence encoder; no CLIP weights."""
    from media.models import ModelRegistry, ModelSettings

    return ModelRegistry(ModelSettings(models_dir=str(models_dir)))


@pytest.fixture(scope="session")
def tiny_clip():
    from media.models import ClipEmbedder

    return ClipEmbedder.random_for_tests()
