"""Transcode an accepted upload into a web-playable MP4 and a poster JPEG.

Output: H.264 (High, yuv420p) + AAC-LC stereo 48 kHz in MP4 with ``+faststart`` (moov before mdat), display
aspect kept (rotation and non-square pixels applied), the long side capped (never upscaled), even dimensions,
frame rate capped at 60, metadata stripped (phone GPS tags, ...), a keyframe at least every second (cheap
seeking and cheap frame sampling, see ``media.frames``).
A video without sound gets **no audio track** (browsers play it fine; ``has_audio`` stays honest).
Outputs are written under a temporary name and renamed, so a half-written file never counts as done.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import ffmpeg as ffmpeg_python

from media import ffmpeg as ff
from media.atomic import atomic_output
from media.errors import MediaRejected
from media.probe import MediaLimits, ProbeInfo


@dataclass(frozen=True)
class TranscodeOptions:
    max_long_side: int = 1280
    crf: int = 23
    preset: str = "veryfast"
    audio_bitrate: str = "128k"
    max_fps: int = 60
    keyframe_interval_s: float = 1.0
    threads: int = 0  # 0 = ffmpeg decides


def output_size(width: int, height: int, max_long_side: int) -> tuple[int, int]:
    """Display size after capping the long side (no upscaling), rounded to even numbers."""
    scale = min(1.0, max_long_side / max(width, height))
    w = max(2, int(width * scale) // 2 * 2)
    h = max(2, int(height * scale) // 2 * 2)
    return w, h


def transcode(src: str | os.PathLike, dst: str | os.PathLike, info: ProbeInfo,
              options: TranscodeOptions | None = None, limits: MediaLimits | None = None,
              tools: ff.FFmpegTools | None = None) -> dict:
    """Transcode ``src`` to ``dst`` (atomically). Returns the output's width, height and whether it has audio.

    Raises :class:`MediaRejected` (``undecodable``) when ffmpeg cannot decode an input that probing accepted,
    :class:`media.ffmpeg.FFmpegTimeout` (transient) on timeout.
    """
    options = options or TranscodeOptions()
    limits = limits or MediaLimits()
    tools = tools or ff.default_tools()
    width, height = output_size(info.width, info.height, options.max_long_side)
    gop = max(1, int(round(min(info.fps or 30.0, options.max_fps) * options.keyframe_interval_s)))

    with atomic_output(dst) as tmp:
        source = ffmpeg_python.input(ff.file_url(src), **ff.input_options(limits.max_pixels))
        # autorotation happens before the filter graph, so (width, height) are display dimensions
        video = source.video.filter("scale", width, height, flags="bicubic").filter("setsar", 1)
        streams = [video]
        out_opts: dict = {
            "c:v": "libx264", "preset": options.preset, "crf": options.crf, "profile:v": "high",
            "pix_fmt": "yuv420p", "g": gop, "fpsmax": options.max_fps, "movflags": "+faststart",
            "map_metadata": -1, "map_chapters": -1, "t": limits.max_duration_s, "f": "mp4",
        }
        if options.threads:
            out_opts["threads"] = options.threads
        if info.has_audio:
            streams.append(source["a:0"])
            out_opts.update({"c:a": "aac", "b:a": options.audio_bitrate, "ac": 2, "ar": 48000})
        cmd = (ffmpeg_python.output(*streams, ff.file_url(tmp), **out_opts)
               .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
               .overwrite_output()
               .compile(cmd=tools.ffmpeg))
        result = ff.run(cmd, timeout=limits.transcode_timeout_s)
        if result.returncode != 0:
            _raise_for_failed_decode(cmd, result)
    return {"width": width, "height": height, "has_audio": info.has_audio}


def _raise_for_failed_decode(cmd: list[str], result: ff.Completed) -> None:
    if result.returncode < 0:  # killed by a signal (OOM killer, shutdown): worth a retry
        raise ff.FFmpegFailed(cmd, result)
    err = result.stderr_text.lower()
    if "no space left" in err or "cannot allocate" in err or "resource temporarily" in err:
        raise ff.FFmpegFailed(cmd, result)
    raise MediaRejected("undecodable", "The video could not be converted: its picture or sound data is "
                        "damaged. Please re-export it from your editor or camera app and upload again.")


def make_poster(video: str | os.PathLike, dst: str | os.PathLike, duration_s: float,
                at_s: float | None = None, limits: MediaLimits | None = None,
                tools: ff.FFmpegTools | None = None) -> float:
    """Write a JPEG poster (same size as the video) atomically. Returns the timestamp used."""
    limits = limits or MediaLimits()
    tools = tools or ff.default_tools()
    if at_s is None:
        at_s = min(1.0, duration_s * 0.1)
    at_s = max(0.0, min(at_s, max(0.0, duration_s - 0.05)))
    with atomic_output(dst) as tmp:
        for seek in (at_s, 0.0):
            cmd = (ffmpeg_python.input(ff.file_url(video), ss=f"{seek:.3f}", **ff.input_options(limits.max_pixels))
                   .output(ff.file_url(tmp), vframes=1, **{"q:v": 3, "f": "image2", "c:v": "mjpeg"})
                   .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
                   .overwrite_output()
                   .compile(cmd=tools.ffmpeg))
            ff.run(cmd, timeout=limits.step_timeout_s, check=True)
            if Path(tmp).exists() and Path(tmp).stat().st_size > 0:
                return seek
        raise ff.FFmpegFailed(cmd, ff.Completed(1, b"", b"no frame could be decoded for the poster"))
    return at_s  # pragma: no cover
