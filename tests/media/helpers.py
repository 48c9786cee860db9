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


def synth_music(seed: int, seconds: float = 20.0, rate: int = 16000):
    """A reproducible synthetic tune: plucked notes (harmonics, decaying) on a scale, a bass line, a tempo
    and melody drawn from ``seed``. Different seeds are different music."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros_like(t)
    beat = 60 / rng.uniform(90, 140)
    scale = 220 * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16]) / 12)
    pos = 0.0
    while pos < seconds:
        length = beat * rng.choice([0.5, 1.0, 1.0])
        freq = rng.choice(scale) * rng.choice([1, 2])
        note = (t >= pos) & (t < pos + length * 1.5)
        tt = t[note] - pos
        out[note] += np.exp(-tt * 4) * (np.sin(2 * np.pi * freq * tt) + 0.5 * np.sin(4 * np.pi * freq * tt)
                                        + 0.25 * np.sin(6 * np.pi * freq * tt))
        bass = (t >= pos) & (t < pos + length)
        out[bass] += 0.4 * np.exp(-(t[bass] - pos) * 3) * np.sin(2 * np.pi * freq / 4 * (t[bass] - pos))
        pos += length
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


def encode_audio(tools: ff.FFmpegTools, samples, path: Path, *, codec: str = "aac", bitrate: str = "128k",
                 start_s: float = 0.0, gain: float = 1.0, rate: int = 16000) -> Path:
    """Encode mono float samples with a lossy codec, dropping the first ``start_s`` seconds, at ``gain``."""
    import numpy as np

    pcm = (np.clip(np.asarray(samples) * gain, -1, 1) * 32767).astype(np.int16).tobytes()
    cmd = [tools.ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "s16le", "-ar", str(rate), "-ac", "1", "-i",
           "pipe:0", "-ss", str(start_s), "-c:a", codec, "-b:a", bitrate, "-ar", "48000", str(path)]
    subprocess.run(cmd, input=pcm, check=True, timeout=120)
    return path
