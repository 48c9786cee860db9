"""Which uploads are copied as they are and which are re-encoded (decided from the probe alone)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from media.probe import ProbeInfo
from media.transcode import TranscodeOptions, remux_reason

PHONE = ProbeInfo(container="mov,mp4,m4a,3gp,3g2,mj2", duration_s=30.0, width=1280, height=720, fps=30.0,
                  video_codec="h264", has_audio=True, audio_codec="aac", size_bytes=15_000_000,
                  video_profile="High", pix_fmt="yuv420p", bit_rate=4_000_000, audio_channels=2)


def test_a_720p_h264_aac_phone_clip_is_copied():
    assert remux_reason(PHONE, TranscodeOptions()) is None
    assert remux_reason(replace(PHONE, has_audio=False, audio_codec=None, audio_channels=0), TranscodeOptions()) is None


@pytest.mark.parametrize("change,why", [
    ({"video_codec": "hevc", "video_profile": "Main"}, "video"),
    ({"video_profile": "High 10", "pix_fmt": "yuv420p10le"}, "video"),
    ({"pix_fmt": "yuv422p"}, "pixel format"),
    ({"audio_codec": "opus"}, "audio"),
    ({"audio_channels": 6}, "audio"),
    ({"container": "matroska,webm"}, "container"),
    ({"width": 1920, "height": 1080}, "size"),
    ({"rotation": 90}, "rotated"),
    ({"square_pixels": False}, "rotated or non-square"),
    ({"fps": 120.0}, "frame rate"),
    ({"bit_rate": 30_000_000}, "bitrate"),
    ({"bit_rate": 0}, "bitrate"),
])
def test_anything_a_browser_might_not_play_or_stream_is_reencoded(change, why):
    assert remux_reason(replace(PHONE, **change), TranscodeOptions()).startswith(why)


def test_remuxing_can_be_switched_off():
    assert remux_reason(PHONE, TranscodeOptions(remux_web_ready=False)) == "remuxing disabled"
