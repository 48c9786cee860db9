"""Probe an upload and reject what we will not process, with a specific message for the creator."""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import asdict, dataclass
from pathlib import Path

from media import ffmpeg as ff
from media.errors import MediaRejected

ACCEPTED = "MP4, MOV, WebM, MKV or AVI"


@dataclass(frozen=True)
class MediaLimits:
    """Limits applied to uploads. ``max_bytes`` is enforced by the web upload too; probe re-checks it."""

    max_bytes: int = 200 * 1024 * 1024
    max_duration_s: float = 600.0
    max_pixels: int = ff.DEFAULT_MAX_PIXELS  # per frame, width x height
    min_side: int = 16
    probe_timeout_s: float = 30.0
    transcode_timeout_s: float = 900.0
    step_timeout_s: float = 300.0  # frames, poster, audio extraction


@dataclass(frozen=True)
class ProbeInfo:
    container: str  # ffprobe's format_name, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "matroska,webm"
    duration_s: float
    width: int  # display size (rotation and sample aspect ratio applied)
    height: int
    fps: float
    video_codec: str
    has_audio: bool
    audio_codec: str | None
    size_bytes: int
    rotation: int = 0
    # What decides whether the upload can be served as it is (remuxed) instead of re-encoded:
    video_profile: str | None = None  # "High", "Main", "Constrained Baseline", ...
    pix_fmt: str | None = None
    square_pixels: bool = True
    bit_rate: int = 0  # the whole file's, bits per second (0: unknown)
    audio_channels: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ProbeInfo:
        return cls(**data)


# --- cheap content sniffing, so the message says what the file really is -------------------------------------

_IMAGE_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"BM", "a BMP image"),
]
_AUDIO_MAGIC = [(b"ID3", "an MP3 audio file"), (b"fLaC", "a FLAC audio file")]
_OTHER_VIDEO_MAGIC = [
    (b"FLV", "FLV"),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "WMV/ASF"),
    (b".RMF", "RealMedia"),
    (b"OggS", "Ogg"),
    (b"\x00\x00\x01\xba", "MPEG program stream"),
]
_MP4_TOP_LEVEL = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"pnot", b"meta", b"moof",
                  b"mfra", b"styp", b"sidx", b"pdin", b"prfl", b"junk"}


def _sniff(head: bytes) -> tuple[str, str] | None:
    """Return (code, message) when the first bytes already tell us the file is unacceptable."""
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"#EXTM3U") or b"#EXT-X-" in head[:1024]:
        return ("playlist", "This is a streaming playlist (HLS .m3u8) renamed to look like a video, not a video "
                "file. Please upload the video itself (" + ACCEPTED + ").")
    for magic, what in _IMAGE_MAGIC:
        if head.startswith(magic):
            return ("not_a_video", f"This file is {what}, not a video. Please upload a video ({ACCEPTED}).")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ("not_a_video", f"This file is a WebP image, not a video. Please upload a video ({ACCEPTED}).")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return ("audio_only", "This is a WAV audio file with no video. Please upload a video with picture.")
    for magic, what in _AUDIO_MAGIC:
        if head.startswith(magic):
            return ("audio_only", f"This is {what} with no video. Please upload a video with picture.")
    for magic, what in _OTHER_VIDEO_MAGIC:
        if head.startswith(magic):
            return ("unsupported_container", f"{what} files are not supported. Please convert the video to "
                    f"{ACCEPTED} and upload it again.")
    if len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47:
        return ("unsupported_container", "MPEG transport stream (.ts) files are not supported. Please convert "
                f"the video to {ACCEPTED} and upload it again.")
    if _looks_like_text(head):
        return ("not_a_video", f"This file contains text, not video. Please upload a video ({ACCEPTED}).")
    return None


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character cut at the end of the sample is still text
        try:
            text = head[:-4].decode("utf-8")
        except UnicodeDecodeError:
            return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * len(text)


def _is_isobmff(head: bytes) -> bool:
    return len(head) >= 8 and head[4:8] in _MP4_TOP_LEVEL


def _check_isobmff(path: Path, size: int) -> tuple[str, str] | None:
    """Walk the top-level boxes of an MP4/MOV. A box running past the end of the file, or no ``moov`` box,
    means the upload was cut short."""
    truncated = ("truncated", "The video file is incomplete: it looks like the upload or the recording was cut "
                 "short. Please upload the complete file again.")
    seen: set[bytes] = set()
    offset = 0
    with open(path, "rb") as fh:
        while offset < size:
            fh.seek(offset)
            header = fh.read(16)
            if len(header) < 8:
                return truncated
            box_size, box_type = struct.unpack(">I4s", header[:8])
            if box_size == 1:
                if len(header) < 16:
                    return truncated
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:  # box runs to the end of the file
                box_size = size - offset
            if box_size < 8:
                return ("not_a_video", f"This file is damaged or is not a video. Please upload a video "
                        f"({ACCEPTED}).")
            if offset + box_size > size:
                return truncated
            seen.add(box_type)
            offset += box_size
    if b"moov" not in seen and b"moof" not in seen:
        return truncated
    return None


# --- ffprobe ----------------------------------------------------------------------------------------------------

def _ffprobe(tools: ff.FFmpegTools, path: Path, limits: MediaLimits) -> dict:
    cmd = [tools.ffprobe, "-v", "error", *ff.input_args(limits.max_pixels), "-show_format", "-show_streams",
           "-of", "json", ff.file_url(path)]
    try:
        result = ff.run(cmd, timeout=limits.probe_timeout_s)
    except ff.FFmpegTimeout as exc:
        raise MediaRejected("probe_timeout", "We could not read this video in time "
                            f"({limits.probe_timeout_s:g} s). The file may be damaged or unusually complex; "
                            "please re-export it and upload again.") from exc
    err = result.stderr_text
    if "exceeds specified max pixel count" in err or "max pixel" in err:
        raise _too_many_pixels(None, None, limits)
    if result.returncode != 0:
        if "not on whitelist" in err.lower():
            raise MediaRejected("unsupported_container", "This video format is not supported. Please convert "
                                f"the video to {ACCEPTED} and upload it again.")
        raise MediaRejected("not_a_video", "This file could not be read as a video: it is damaged or is not "
                            f"a video. Please upload a video ({ACCEPTED}).")
    try:
        return json.loads(result.stdout or b"{}")
    except json.JSONDecodeError as exc:
        raise MediaRejected("not_a_video", "This file could not be read as a video.") from exc


def _too_many_pixels(width: int | None, height: int | None, limits: MediaLimits) -> MediaRejected:
    side = int(math.isqrt(limits.max_pixels))
    dims = f" ({width}x{height})" if width and height else ""
    return MediaRejected("too_many_pixels", f"The video's picture is too large{dims}. The limit is "
                         f"{limits.max_pixels:,} pixels per frame (about {side}x{side}); please export at a "
                         "lower resolution, such as 1080p.")


def _fraction(value: str | None) -> float:
    if not value or value in ("0/0", "N/A"):
        return 0.0
    try:
        if "/" in value:
            num, den = value.split("/", 1)
            return float(num) / float(den) if float(den) else 0.0
        return float(value)
    except ValueError:
        return 0.0


def _rotation(stream: dict) -> int:
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            try:
                return int(round(float(side["rotation"]))) % 360
            except (TypeError, ValueError):
                return 0
    try:
        return int((stream.get("tags") or {}).get("rotate", 0)) % 360
    except (TypeError, ValueError):
        return 0


def _float(value) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return 0.0
    return result if math.isfinite(result) else 0.0


def probe(path: str | os.PathLike, limits: MediaLimits | None = None,
          tools: ff.FFmpegTools | None = None) -> ProbeInfo:
    """Inspect an upload. Returns :class:`ProbeInfo` or raises :class:`MediaRejected` with a specific code:
    ``missing_file``, ``empty_file``, ``too_large``, ``playlist``, ``not_a_video``, ``audio_only``,
    ``unsupported_container``, ``truncated``, ``too_many_pixels``, ``too_small``, ``too_long``,
    ``no_duration``, ``probe_timeout``."""
    limits = limits or MediaLimits()
    tools = tools or ff.default_tools()
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise MediaRejected("missing_file", "The uploaded file is missing; please upload it again.") from exc
    if size == 0:
        raise MediaRejected("empty_file", "The uploaded file is empty (0 bytes). Please upload the video again.")
    if size > limits.max_bytes:
        raise MediaRejected("too_large", f"The file is {size / 1e6:.0f} MB; the limit is "
                            f"{limits.max_bytes / 1e6:.0f} MB.")
    with open(path, "rb") as fh:
        head = fh.read(4096)
    sniffed = _sniff(head)
    if sniffed:
        raise MediaRejected(*sniffed)
    if _is_isobmff(head):
        broken = _check_isobmff(path, size)
        if broken:
            raise MediaRejected(*broken)

    data = _ffprobe(tools, path, limits)
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    container = str(fmt.get("format_name") or "")
    allowed = set(ff.FORMAT_WHITELIST.split(","))
    if not container or not set(container.split(",")) & allowed:
        raise MediaRejected("unsupported_container", f"This video format ({container or 'unknown'}) is not "
                            f"supported. Please convert the video to {ACCEPTED} and upload it again.")

    videos = [s for s in streams if s.get("codec_type") == "video"
              and not (s.get("disposition") or {}).get("attached_pic")]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    if not videos:
        if audios:
            raise MediaRejected("audio_only", "This file has sound but no picture. Please upload a video.")
        raise MediaRejected("not_a_video", f"This file has no video in it. Please upload a video ({ACCEPTED}).")
    video = videos[0]
    coded_w, coded_h = int(video.get("width") or 0), int(video.get("height") or 0)
    if coded_w * coded_h > limits.max_pixels:
        raise _too_many_pixels(coded_w, coded_h, limits)
    if min(coded_w, coded_h) < limits.min_side:
        raise MediaRejected("too_small", f"The video's picture is too small ({coded_w}x{coded_h}); it must be "
                            f"at least {limits.min_side} pixels on each side.")
    if not video.get("codec_name"):
        raise MediaRejected("not_a_video", "The video stream in this file uses an unknown codec.")

    sar = _fraction(video.get("sample_aspect_ratio"))
    width, height = coded_w, coded_h
    if sar > 0 and abs(sar - 1.0) > 1e-3:
        width = int(round(coded_w * sar))
    rotation = _rotation(video)
    if rotation in (90, 270):
        width, height = height, width

    duration = _float(fmt.get("duration")) or _float(video.get("duration"))
    if duration <= 0:
        raise MediaRejected("no_duration", "This video has no playable length (no duration could be read). "
                            "It may be damaged or still being recorded.")
    if duration > limits.max_duration_s:
        raise MediaRejected("too_long", f"The video is {_clock(duration)} long; the limit is "
                            f"{_clock(limits.max_duration_s)}. Please trim it and upload again.")

    fps = _fraction(video.get("avg_frame_rate")) or _fraction(video.get("r_frame_rate"))
    return ProbeInfo(
        container=container,
        duration_s=round(duration, 3),
        width=width,
        height=height,
        fps=round(fps, 3),
        video_codec=str(video.get("codec_name")),
        has_audio=bool(audios),
        audio_codec=str(audios[0].get("codec_name")) if audios else None,
        size_bytes=size,
        rotation=rotation,
        video_profile=str(video.get("profile")) if video.get("profile") else None,
        pix_fmt=str(video.get("pix_fmt")) if video.get("pix_fmt") else None,
        square_pixels=not (sar > 0 and abs(sar - 1.0) > 1e-3),
        bit_rate=int(_float(fmt.get("bit_rate"))) or int(size * 8 / duration),
        audio_channels=int(audios[0].get("channels") or 0) if audios else 0,
    )


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"
