"""The `foryou` commands as a user runs them: real subprocesses on a fresh data directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from media import ffmpeg as ff
from tests.media.helpers import FIXTURES, make_video

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def foryou(data_dir: Path, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "FORYOU_DATA_DIR": str(data_dir), "FORYOU_ALLOW_MODEL_DOWNLOADS": "false",
           "FORYOU_LOG_JSON": "false", "FORYOU_SECRET_KEY": "test-secret"}
    done = subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check:
        assert done.returncode == 0, f"foryou {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def last_json(text: str) -> object:
    """The JSON document a command prints (log lines, if any, come before it)."""
    start = min(i for i in (text.find("{"), text.find("[")) if i >= 0)
    return json.loads(text[start:])


def test_models_status_and_jobs_list(tmp_path):
    status = last_json(foryou(tmp_path / "data", "models", "status").stdout)
    assert status["whisper"]["state"] in {"available", "loaded"} and status["whisper"]["model_id"] == "whisper:tiny.en"
    assert status["clip"]["state"] == "missing" and "no CLIP weights" in status["clip"]["detail"]
    assert status["sentence"]["state"] in {"available", "loaded"}
    jobs = last_json(foryou(tmp_path / "data", "jobs", "list").stdout)
    names = {job["name"] for job in jobs}
    assert "media_pipeline" in names and len([n for n in names if n.startswith("recommender:")]) >= 5, names
    assert all(job["description"] for job in jobs)
    assert all(job["every_s"] > 0 for job in jobs if job["name"].startswith("recommender:"))


def test_seed_once_upload_wait_and_recommend(tmp_path):
    data = tmp_path / "data"
    seeded = last_json(foryou(data, "seed", "--if-empty", "--limit", "2").stdout)
    assert seeded["seeded"] == 2 and seeded["total_in_manifest"] >= 2
    again = last_json(foryou(data, "seed", "--if-empty", "--limit", "2").stdout)
    assert again["seeded"] == 0 and "not empty" in again["skipped"]

    clip = make_video(ff.locate(), tmp_path / "speech.mp4", size="320x240", duration=5.25,
                      audio_file=FIXTURES / "speech_slt.wav")
    report = last_json(foryou(data, "upload", str(clip), "--user", "baker", "--caption", "Cookies #baking",
                              "--wait").stdout)
    assert report["state"] == "ready", report
    assert "chocolate" in report["transcript"].lower() and report["language"] == "en"
    assert len(report["steps"]) >= 8 and {step["status"] for step in report["steps"]} == {"succeeded"}
    models = report["models"]  # no CLIP weights: understood from its words, and the record says so
    assert models["text"] == "text:all-MiniLM-L6-v2" and models["speech"] == "whisper:tiny.en", models
    assert models["visual_status"] == "skipped" and "no CLIP weights" in models["visual_reason"]

    # The seeded creators exist; one of them is offered the baker's ready video, with its source and reasons.
    picks = last_json(foryou(data, "recommend", "orbit.ollie", "--json").stdout)
    assert [p["video_id"] for p in picks] == [report["video_id"]]
    assert picks[0]["source"] and picks[0]["reasons"]
    missing = foryou(data, "recommend", "nobody-by-this-name", check=False)
    assert missing.returncode != 0 and "nobody-by-this-name" in missing.stdout + missing.stderr
