"""Sample N representative frames spread over a video.

Cheap and scene-aware: only keyframes are decoded (``-skip_frame nokey``). Our transcode puts a keyframe at
least every second and x264 adds one at every scene cut, so the keyframes are an evenly spread set of candidates
that includes the first frame of each scene. The video is split into N equal time bins; each bin takes the
keyframe that differs most from the frame picked before it (a new scene rather than a near-duplicate).
When there are fewer keyframes than N (short clips, foreign encodes), frames are decoded at even times instead.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

from media import ffmpeg as ff
from media.probe import MediaLimits

_PTS_RE = re.compile(r"pts_time:\s*(-?[0-9.]+)")


@dataclass
class Frame:
    time_s: float
    image: Image.Image


def frame_size(width: int, height: int, short_side: int = 256) -> tuple[int, int]:
    scale = min(1.0, short_side / min(width, height))
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def _decode(tools: ff.FFmpegTools, video: str | os.PathLike, size: tuple[int, int], limits: MediaLimits,
            keyframes_only: bool, fps: float | None = None) -> list[Frame]:
    w, h = size
    vf = f"scale={w}:{h}:flags=area"
    if fps:
        vf = f"fps={fps:.6f}:start_time=0," + vf
    cmd = [tools.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "info"]
    if keyframes_only:
        cmd += ["-skip_frame", "nokey"]
    cmd += [*ff.input_args(limits.max_pixels), "-i", ff.file_url(video), "-map", "0:v:0", "-an", "-sn",
            "-vf", vf + ",showinfo", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    result = ff.run(cmd, timeout=limits.step_timeout_s, check=True)
    frame_bytes = w * h * 3
    count = len(result.stdout) // frame_bytes
    times = [float(t) for t in _PTS_RE.findall(result.stderr_text)]
    frames = []
    for i in range(count):
        t = times[i] if i < len(times) else (i / fps if fps else 0.0)
        arr = np.frombuffer(result.stdout, dtype=np.uint8, count=frame_bytes, offset=i * frame_bytes)
        frames.append(Frame(round(t, 3), Image.fromarray(arr.reshape(h, w, 3), "RGB")))
    return frames


def _signature(image: Image.Image) -> np.ndarray:
    return np.asarray(image.resize((16, 16), Image.Resampling.BILINEAR), dtype=np.float32).ravel() / 255.0


def _pick(candidates: list[Frame], n: int, duration_s: float) -> list[Frame]:
    if len(candidates) <= n:
        return candidates
    bins: list[list[Frame]] = [[] for _ in range(n)]
    for frame in candidates:
        idx = min(n - 1, max(0, int(frame.time_s / duration_s * n))) if duration_s > 0 else 0
        bins[idx].append(frame)
    picked: list[Frame] = []
    previous: np.ndarray | None = None
    leftovers = [f for b in bins for f in b]
    for i, members in enumerate(bins):
        if not members:
            continue
        center = (i + 0.5) * duration_s / n
        if previous is None:
            choice = min(members, key=lambda f: abs(f.time_s - center))
        else:
            prev = previous
            choice = max(members, key=lambda f: (float(np.abs(_signature(f.image) - prev).mean()),
                                                 -abs(f.time_s - center)))
        picked.append(choice)
        previous = _signature(choice.image)
    # empty bins (long GOPs): fill with unused candidates farthest in time from what was picked
    while len(picked) < n:
        unused = [f for f in leftovers if f not in picked]
        if not unused:
            break
        best = max(unused, key=lambda f: min(abs(f.time_s - p.time_s) for p in picked))
        picked.append(best)
    return sorted(picked, key=lambda f: f.time_s)


def sample_frames(video: str | os.PathLike, duration_s: float, width: int, height: int, n: int = 8,
                  short_side: int = 256, limits: MediaLimits | None = None,
                  tools: ff.FFmpegTools | None = None) -> list[Frame]:
    """Return up to ``n`` frames (RGB PIL images, short side ``short_side``) in time order."""
    if n <= 0:
        return []
    limits = limits or MediaLimits()
    tools = tools or ff.default_tools()
    size = frame_size(width, height, short_side)
    candidates = _decode(tools, video, size, limits, keyframes_only=True)
    if len(candidates) < n and duration_s > 0:
        # fewer keyframes than frames wanted: decode at evenly spaced times (n frames, centred in their bins)
        even = _decode(tools, video, size, limits, keyframes_only=False, fps=n / duration_s)
        if len(even) >= len(candidates):
            candidates = even
    return _pick(candidates, n, duration_s)
