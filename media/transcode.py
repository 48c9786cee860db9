"""Transcode an accepted upload into a web-playable MP4 and a poster JPEG, or, when it already is one
(:func:`remux_reason` finds nothing against it), copy its streams into a faststart MP4 without re-encoding
(:func:`remux`): about a hundredth of the CPU, and no generation loss.

Output: H.264 (High, yuv420p) + AAC-LC stereo 48 kHz in MP4 with ``+faststart`` (moov before mdat), display
aspect kept (rotation and non-square pixels applied), the long side capped (never upscaled), even dimensions,
frame rate capped at 60, metadata stripped (phone GPS tags, ...), a keyframe at least every second (cheap
seeking and cheap frame sampling, see ``media.frames``).
A video without sound gets **no audio track** (browsers play it fine; ``has_audio`` stays honest).
"Use this sound": with ``sound`` (an audio file), that track replaces the upload's audio (``replace``) or is mixed
under it at ``MIX_UNDER_GAIN`` (``mix``); either way the output lasts as long as the picture.
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

SOUND_MODES = ("replace", "mix")
MIX_UNDER_GAIN = 0.35  # the chosen sound sits under the creator's own voice (about -9 dB)


@dataclass(frozen=True)
class TranscodeOptions:
    max_long_side: int = 1280
    crf: int = 23
    preset: str = "veryfast"
    # On top of the preset: subme=1 (superfast's quick sub-pixel refinement) takes about a fifth off veryfast's
    # encoding CPU at the same CRF, for about 14% more bytes and the same SSIM (0.991 vs 0.991 on the
    # benchmark's HEVC clip); still half the bytes of superfast (no macroblock tree there) for about its CPU.
    # "" leaves the preset as it is.
    x264_params: str = "subme=1"
    audio_bitrate: str = "128k"
    max_fps: int = 60
    keyframe_interval_s: float = 1.0
    threads: int = 2  # per ffmpeg process: media work must leave cores to the web requests (0 = ffmpeg decides)
    remux_web_ready: bool = True  # serve an already web-playable upload as it is (streams copied)
    # "Sane bitrate" for a copy: up to this many bits per pixel per frame (at least min_bitrate_cap, small
    # clips stream fine at that), never above max_bitrate; above it, re-encoding makes the file smaller.
    max_bits_per_pixel: float = 0.3
    min_bitrate_cap: int = 2_500_000
    max_bitrate: int = 12_000_000


WEB_PROFILES = frozenset({"Baseline", "Constrained Baseline", "Main", "High"})
MP4_FAMILY = frozenset({"mov", "mp4"})


def remux_reason(info: ProbeInfo, options: TranscodeOptions) -> str | None:
    """Why ``info``'s file must be re-encoded for the web, or None when a stream copy plays everywhere:
    H.264 (High profile or lower, 8-bit 4:2:0), AAC stereo or no sound, MP4/MOV, square pixels, no rotation
    flag, long side within the cap, frame rate within the cap, and a bitrate a phone can stream."""
    if not options.remux_web_ready:
        return "remuxing disabled"
    if not set(info.container.split(",")) & MP4_FAMILY:
        return f"container {info.container}"
    if info.video_codec != "h264" or info.video_profile not in WEB_PROFILES:
        return f"video {info.video_codec} {info.video_profile}"
    if info.pix_fmt not in ("yuv420p", "yuvj420p"):
        return f"pixel format {info.pix_fmt}"
    if info.has_audio and (info.audio_codec != "aac" or not 0 < info.audio_channels <= 2):
        return f"audio {info.audio_codec} x{info.audio_channels}"
    if info.rotation or not info.square_pixels:
        return "rotated or non-square pixels"
    if max(info.width, info.height) > options.max_long_side or info.width % 2 or info.height % 2:
        return f"size {info.width}x{info.height}"
    if not 0 < info.fps <= options.max_fps:
        return f"frame rate {info.fps}"
    budget = min(options.max_bitrate,
                 max(options.min_bitrate_cap, options.max_bits_per_pixel * info.width * info.height * info.fps))
    if not 0 < info.bit_rate <= budget:
        return f"bitrate {info.bit_rate}"
    return None


def remux(src: str | os.PathLike, dst: str | os.PathLike, info: ProbeInfo, limits: MediaLimits | None = None,
          tools: ff.FFmpegTools | None = None) -> dict:
    """Copy the first video and audio stream into a faststart MP4 (atomically), metadata stripped."""
    limits = limits or MediaLimits()
    tools = tools or ff.default_tools()
    with atomic_output(dst) as tmp:
        cmd = [tools.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", *ff.input_args(limits.max_pixels),
               "-i", ff.file_url(src), "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", "-map_metadata", "-1",
               "-map_chapters", "-1", "-movflags", "+faststart", "-t", str(limits.max_duration_s), "-f", "mp4",
               "-y", ff.file_url(tmp)]
        result = ff.run(cmd, timeout=limits.transcode_timeout_s)
        if result.returncode != 0:
            _raise_for_failed_decode(cmd, result)
    return {"width": info.width, "height": info.height, "has_audio": info.has_audio, "method": "remux"}


def output_size(width: int, height: int, max_long_side: int) -> tuple[int, int]:
    """Display size after capping the long side (no upscaling), rounded to even numbers."""
    scale = min(1.0, max_long_side / max(width, height))
    w = max(2, int(width * scale) // 2 * 2)
    h = max(2, int(height * scale) // 2 * 2)
    return w, h


def transcode(src: str | os.PathLike, dst: str | os.PathLike, info: ProbeInfo,
              options: TranscodeOptions | None = None, limits: MediaLimits | None = None,
              tools: ff.FFmpegTools | None = None, sound: str | os.PathLike | None = None,
              sound_mode: str = "replace") -> dict:
    """Transcode ``src`` to ``dst`` (atomically). Returns the output's width, height and whether it has audio.
    ``sound``: an audio file that replaces (``sound_mode="replace"``) or is mixed under (``"mix"``) the audio.

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
        if options.x264_params:
            out_opts["x264-params"] = options.x264_params
        if options.threads:
            out_opts["threads"] = options.threads
        has_audio = info.has_audio
        if sound is not None:
            if sound_mode not in SOUND_MODES:
                raise ValueError(f"sound_mode must be one of {SOUND_MODES}, not {sound_mode!r}")
            backing = ffmpeg_python.input(ff.file_url(sound), **ff.input_options(limits.max_pixels))["a:0"]
            if sound_mode == "mix" and info.has_audio:
                audio = ffmpeg_python.filter([source["a:0"], backing.filter("volume", MIX_UNDER_GAIN)], "amix",
                                             inputs=2, duration="first", dropout_transition=0, normalize=0)
            else:
                audio = backing
            streams.append(audio)
            out_opts["t"] = min(limits.max_duration_s, info.duration_s)  # the picture sets the length
            has_audio = True
        elif info.has_audio:
            streams.append(source["a:0"])
        if has_audio:
            out_opts.update({"c:a": "aac", "b:a": options.audio_bitrate, "ac": 2, "ar": 48000})
        cmd = (ffmpeg_python.output(*streams, ff.file_url(tmp), **out_opts)
               .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
               .overwrite_output()
               .compile(cmd=tools.ffmpeg))
        result = ff.run(cmd, timeout=limits.transcode_timeout_s)
        if result.returncode != 0:
            _raise_for_failed_decode(cmd, result)
    return {"width": width, "height": height, "has_audio": has_audio, "method": "transcode"}


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
