"""Real ``foryou serve`` processes on loopback for multi-process tests, bounded in time.

``LiveServer`` starts the command line exactly as an operator would (its own Python process, its own port),
waits until ``/healthz`` answers, collects stderr (the structured log) and stops it with SIGTERM (or SIGKILL
when asked). Every wait has a deadline, so a hung server fails the test instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.process: subprocess.Popen | None = None
        self.lines: list[str] = []
        self._reader: threading.Thread | None = None

    def start(self) -> LiveServer:
        return self.launch().wait_ready()

    def launch(self) -> LiveServer:
        """Start the process without waiting (start several, then ``wait_ready`` each: start-ups overlap)."""
        env = {**os.environ, "PYTHONPATH": str(ROOT), "FORYOU_DATA_DIR": str(self.data_dir),
               "FORYOU_PORT": str(self.port), "FORYOU_HOST": "127.0.0.1", "FORYOU_SECRET_KEY": "live-test-secret",
               "FORYOU_RUN_SCHEDULER": "false", "FORYOU_LOG_JSON": "true", "FORYOU_ALLOW_MODEL_DOWNLOADS": "false",
               **self.extra_env}
        self.process = subprocess.Popen([sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def wait_ready(self) -> LiveServer:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = "\n".join(self.lines[-30:])
                raise RuntimeError(f"foryou serve exited with {self.process.returncode}:\n{tail}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("foryou serve did not answer /healthz in time:\n" + "\n".join(self.lines[-30:]))

    def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def json_lines(self) -> list[dict]:
        records = []
        for line in list(self.lines):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def stop(self, kill: bool = False) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=5)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
