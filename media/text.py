"""Caption text helpers."""

from __future__ import annotations

import re

_HASHTAG_RE = re.compile(r"#(\w{1,100})", re.UNICODE)


def parse_hashtags(caption: str | None) -> list[str]:
    """TikTok-style hashtags: ``#`` then letters, digits or ``_`` (any script); run-together tags like
    ``#fyp#foryou`` count as two. Lowercased, unique, in order of first appearance; all-digit tags (``#1``) are
    ignored."""
    seen: dict[str, None] = {}
    for match in _HASHTAG_RE.finditer(caption or ""):
        tag = match.group(1).casefold()
        if tag.strip("_") and not tag.isdigit():
            seen.setdefault(tag, None)
    return list(seen)


def strip_hashtags(caption: str | None) -> str:
    return " ".join(_HASHTAG_RE.sub(" ", caption or "").split())


def embedding_text(caption: str | None, transcript: str | None, max_chars: int = 2000) -> str:
    """The text a video is embedded by: caption (tags removed), its hashtags as words, then the transcript."""
    parts = [strip_hashtags(caption)]
    tags = parse_hashtags(caption)
    if tags:
        parts.append(" ".join(t.replace("_", " ") for t in tags))
    parts.append(" ".join((transcript or "").split()))
    return ". ".join(p for p in parts if p)[:max_chars]
