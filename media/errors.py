"""Failure classes the job runner acts on.

``MediaRejected`` is permanent: the upload itself is unusable and retrying cannot help; ``message`` is written
for the creator. ``TransientMediaError`` (and any other exception) may succeed on retry with backoff.
"""

from __future__ import annotations


class MediaError(Exception):
    """Base class for media failures."""


class MediaRejected(MediaError):
    """The upload cannot be processed, ever. ``code`` is stable for the app; ``message`` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class TransientMediaError(MediaError):
    """A failure that may go away on retry (timeout under load, killed process, disk full, ...)."""


def is_permanent(exc: BaseException) -> bool:
    """True when retrying the step cannot help."""
    return isinstance(exc, MediaRejected)
