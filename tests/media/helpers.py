"""Helpers shared by the media tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from media import ffmpeg as ff

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def make_video(tools: ff.FFmpegTools, path: Path, *, size: str = "320x240", duration: float = 3.0,
               rate: int = 25, audio: str | None = "sine", codec: str = "libx264", extra: list[str] | None = None,
               audio_file: Path | None = None) -> Path:
    cmd = [tools.ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
           f"testsrc2=s={size}:r={rate}:d={duration}"]
    if audio_file is not None:
        cmd += ["-i", str(audio_file)]
    elif audio == "sine":
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:d={duration}"]
    cmd += ["-c:v", codec]
    if codec == "libx264":
        cmd += ["-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio_file is not None or audio:
        cmd += ["-c:a", "aac"]
    cmd += ["-t", str(duration), *(extra or []), str(path)]
    subprocess.run(cmd, check=True, timeout=120)
    return path


def wav_samples(path: Path):
    import wave

    import numpy as np

    with wave.open(str(path)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0


def word_error_rate(reference: str, hypothesis: str) -> float:
    from whisper.normalizers import EnglishTextNormalizer

    norm = EnglishTextNormalizer()
    ref, hyp = norm(reference).split(), norm(hypothesis).split()
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / max(1, len(ref))
