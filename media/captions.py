"""Timed transcript segments -> WebVTT."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def format_timestamp(seconds: float) -> str:
    millis = max(0, int(round(seconds * 1000)))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _clean(text: str) -> str:
    # WebVTT cue text: no blank lines, no "-->"; escape the characters that start markup
    text = " ".join(text.replace("-->", "->").split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_webvtt(segments: Iterable[Sequence]) -> str:
    """Build a WebVTT document from ``(start_s, end_s, text)`` segments (or dicts with those keys).

    Empty segments are dropped; cues are kept in time order with end > start. The language belongs on the
    page's ``<track srclang=...>``, not in the file.
    """
    lines = ["WEBVTT", ""]
    cues = []
    for seg in segments:
        if isinstance(seg, dict):
            start, end, text = seg["start"], seg["end"], seg["text"]
        else:
            start, end, text = seg[0], seg[1], seg[2]
        text = _clean(str(text))
        if not text:
            continue
        start = max(0.0, float(start))
        end = max(float(end), start + 0.001)
        cues.append((start, end, text))
    cues.sort(key=lambda c: c[0])
    for i, (start, end, text) in enumerate(cues, 1):
        lines += [str(i), f"{format_timestamp(start)} --> {format_timestamp(end)}", text, ""]
    return "\n".join(lines) + ("\n" if not cues else "")
