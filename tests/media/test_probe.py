from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from media import ffmpeg as ff
from media.errors import MediaRejected, is_permanent
from media.probe import MediaLimits, probe
from tests.media.helpers import FIXTURES, make_video


def rejected(path, limits=None, tools=None) -> MediaRejected:
    with pytest.raises(MediaRejected) as info:
        probe(path, limits, tools)
    assert is_permanent(info.value)
    assert info.value.message and info.value.message[0].isupper()
    return info.value


def test_locate_static_binaries(tools):
    for binary in (tools.ffmpeg, tools.ffprobe):
        assert os.access(binary, os.X_OK)
        assert "ubuntu" not in os.path.basename(binary)
    assert tools.version().startswith("ffmpeg version")


def test_hardening_args():
    args = ff.input_args(1234)
    assert args[args.index("-protocol_whitelist") + 1] == "file"
    assert args[args.index("-format_whitelist") + 1] == "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi"
    assert args[args.index("-max_pixels") + 1] == "1234"
    assert ff.file_url("-evil.mp4").startswith("file:/")


def test_probe_ok(videos):
    info = probe(videos["basic"])
    assert info.container.startswith("mov,mp4")
    assert (info.width, info.height) == (320, 240)
    assert info.duration_s == pytest.approx(3.0, abs=0.1)
    assert info.fps == pytest.approx(25.0)
    assert info.video_codec == "h264" and info.has_audio and info.audio_codec == "aac"
    assert info.size_bytes == videos["basic"].stat().st_size


def test_probe_webm_without_audio(videos):
    info = probe(videos["odd"])
    assert info.container == "matroska,webm" and info.video_codec == "vp8" and not info.has_audio


def test_missing_file(tmp_path):
    assert rejected(tmp_path / "nope.mp4").code == "missing_file"


def test_zero_bytes(tmp_path):
    p = tmp_path / "empty.mp4"
    p.touch()
    err = rejected(p)
    assert err.code == "empty_file" and "0 bytes" in err.message


def test_text_renamed_mp4(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("Shopping list: eggs, milk, flour.\n" * 20)
    err = rejected(p)
    assert err.code == "not_a_video" and "text" in err.message


def test_png_renamed_mp4(tmp_path):
    p = tmp_path / "picture.mp4"
    Image.new("RGB", (64, 48), "red").save(p, format="PNG")
    err = rejected(p)
    assert err.code == "not_a_video" and "PNG image" in err.message


def test_hls_playlist_posing_as_mp4(tmp_path, videos):
    p = tmp_path / "clip.mp4"
    p.write_text(f"#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:3.0,\n{videos['basic']}\n#EXT-X-ENDLIST\n")
    err = rejected(p)
    assert err.code == "playlist" and "playlist" in err.message


def test_hls_playlist_blocked_by_ffprobe_itself(tools, tmp_path, videos):
    """Even without our sniffing, the demuxer whitelist stops ffprobe from following the playlist."""
    p = tmp_path / "sneaky.mp4"
    p.write_text(f"#EXTM3U\n#EXTINF:3.0,\n{videos['basic']}\n#EXT-X-ENDLIST\n")
    cmd = [tools.ffprobe, "-v", "error", *ff.input_args(), "-show_format", "-of", "json", ff.file_url(p)]
    result = ff.run(cmd, timeout=30)
    assert result.returncode != 0
    assert b"mov,mp4" not in result.stdout


@pytest.mark.parametrize("keep", [0.1, 0.6])
def test_truncated(tools, tmp_path, videos, keep):
    """Cut a plain MP4 (moov at the end: no moov left) and a faststart MP4 (mdat runs past the end)."""
    src = videos["basic"]
    if keep == 0.6:
        fast = tmp_path / "fast.mp4"
        subprocess.run([tools.ffmpeg, "-v", "error", "-y", "-i", str(src), "-c", "copy", "-movflags", "+faststart",
                        str(fast)], check=True)
        src = fast
    data = src.read_bytes()
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: int(len(data) * keep)])
    err = rejected(p)
    assert err.code == "truncated" and "incomplete" in err.message


def test_audio_only(tools, tmp_path):
    p = tmp_path / "song.m4a"
    subprocess.run([tools.ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(p)],
                   check=True)
    mp4 = tmp_path / "song.mp4"
    p.rename(mp4)
    err = rejected(mp4)
    assert err.code == "audio_only" and "no picture" in err.message


def test_wav_is_audio_only(tmp_path):
    p = tmp_path / "speech.mp4"
    p.write_bytes((FIXTURES / "speech_slt.wav").read_bytes())
    assert rejected(p).code == "audio_only"


def test_decompression_bomb_16k(tools, tmp_path):
    p = tmp_path / "bomb.mp4"
    subprocess.run([tools.ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "color=black:s=16000x16000:r=1",
                    "-frames:v", "1", "-c:v", "libx264", "-preset", "ultrafast", "-x264-params", "cabac=1",
                    "-pix_fmt", "yuv420p", str(p)], check=True, timeout=120)
    assert p.stat().st_size < 200_000  # tiny file, 256 megapixel frame
    err = rejected(p)
    assert err.code == "too_many_pixels" and "too large" in err.message


def test_pixel_limit_is_configurable(videos):
    err = rejected(videos["hd"], MediaLimits(max_pixels=1280 * 720))
    assert err.code == "too_many_pixels"
    assert probe(videos["hd"], MediaLimits(max_pixels=1920 * 1080)).width == 1920


def test_too_long_default_ten_minutes(tools, tmp_path):
    p = make_video(tools, tmp_path / "long.mp4", size="32x32", duration=601.0, rate=1, audio=None)
    err = rejected(p)
    assert err.code == "too_long" and "10:01" in err.message and "10:00" in err.message


def test_too_long_configurable(videos):
    err = rejected(videos["basic"], MediaLimits(max_duration_s=2.0))
    assert err.code == "too_long"


def test_too_large(videos):
    assert rejected(videos["basic"], MediaLimits(max_bytes=1000)).code == "too_large"


@pytest.mark.parametrize("fmt,ext,label", [("flv", "flv", "FLV"), ("mpegts", "ts", "transport stream")])
def test_unsupported_container(tools, tmp_path, fmt, ext, label):
    p = tmp_path / f"clip.{ext}"
    subprocess.run([tools.ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=64x64:d=1",
                    "-c:v", "libx264", "-preset", "ultrafast", "-f", fmt, str(p)], check=True)
    renamed = p.rename(tmp_path / "clip.mp4")
    err = rejected(renamed)
    assert err.code == "unsupported_container" and label in err.message and "MP4" in err.message


def test_probe_timeout(tmp_path, videos, tools):
    slow = tmp_path / "slow-ffprobe"
    slow.write_text("#!/bin/sh\nsleep 10\n")
    slow.chmod(slow.stat().st_mode | stat.S_IEXEC)
    slow_tools = ff.FFmpegTools(ffmpeg=tools.ffmpeg, ffprobe=str(slow))
    err = rejected(videos["basic"], MediaLimits(probe_timeout_s=0.5), slow_tools)
    assert err.code == "probe_timeout"


def test_explicit_binary_paths(tools):
    located = ff.locate(ffmpeg=tools.ffmpeg, ffprobe=tools.ffprobe)
    assert located == tools
    with pytest.raises(ff.FFmpegNotFound):
        ff.locate(ffmpeg=Path("/nonexistent/ffmpeg"))
