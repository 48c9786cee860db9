"""Extract the first audio track as 16 kHz mono float32 samples (what Whisper wants)."""

from __future__ import annotations

import os

import ffmpeg as ffmpeg_python
import numpy as np

from media import ffmpeg as ff
from media.atomic import atomic_output
from media.probe import MediaLimits

SAMPLE_RATE = 16_000


def has_audio_stream(path: str | os.PathLike, limits: MediaLimits | None = None,
                     tools: ff.FFmpegTools | None = None) -> bool:
    limits = limits or MediaLimits()
    tools = tools or ff.default_tools()
    cmd = [tools.ffprobe, "-v", "error", *ff.input_args(limits.max_pixels), "-select_streams", "a",
           "-show_entries", "stream=index", "-of", "csv=p=0", ff.file_url(path)]
    result = ff.run(cmd, timeout=limits.probe_timeout_s, check=True)
    return bool(result.stdout.strip())


def extract_audio(path: str | os.PathLike, limits: MediaLimits | None = None,
                  tools: ff.FFmpegTools | None = None) -> np.ndarray | None:
    """Decode the first audio track to 16 kHz mono float32 in [-1, 1]; ``None`` when there is no audio track.

    Decodes through ffmpeg-python to s16le on a pipe (never ``whisper.load_audio``, which needs ffmpeg on PATH).
    """
    limits = limits or MediaLimits()
    tools = tools or ff.default_tools()
    if not has_audio_stream(path, limits, tools):
        return None
    cmd = (ffmpeg_python.input(ff.file_url(path), **ff.input_options(limits.max_pixels))
           .output("pipe:1", map="0:a:0", format="s16le", acodec="pcm_s16le", ac=1, ar=SAMPLE_RATE,
                   t=limits.max_duration_s)
           .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
           .compile(cmd=tools.ffmpeg))
    result = ff.run(cmd, timeout=limits.step_timeout_s, check=True)
    return np.frombuffer(result.stdout, dtype=np.int16).astype(np.float32) / 32768.0


def copy_audio_track(src: str | os.PathLike, dst: str | os.PathLike, limits: MediaLimits | None = None,
                     tools: ff.FFmpegTools | None = None) -> bool:
    """The first audio track of ``src`` into ``dst`` (MP4 audio, stream-copied, no re-encoding), atomically.
    False when ``src`` has no audio track. Used for "use this sound": the upload keeps its own copy of the track.
    """
    limits = limits or MediaLimits()
    tools = tools or ff.default_tools()
    if not has_audio_stream(src, limits, tools):
        return False
    with atomic_output(dst) as tmp:
        cmd = (ffmpeg_python.input(ff.file_url(src), **ff.input_options(limits.max_pixels))
               .output(ff.file_url(tmp), map="0:a:0", acodec="copy", format="mp4", t=limits.max_duration_s)
               .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
               .overwrite_output()
               .compile(cmd=tools.ffmpeg))
        ff.run(cmd, timeout=limits.step_timeout_s, check=True)
    return True
