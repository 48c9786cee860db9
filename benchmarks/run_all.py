"""`make bench`: every benchmark, each writing its JSON into benchmarks/results/.

Benchmarks run one after another (never in parallel: two cores), with the app's own defaults.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.config import Settings  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> int:
    settings = Settings()
    runs = [
        [sys.executable, str(HERE / "bench_media.py"), "--preset", settings.transcode_preset],
        [sys.executable, str(HERE / "bench_recommender.py")],
        [sys.executable, str(HERE / "bench_http.py")],
        [sys.executable, str(HERE / "bench_ingest.py")],
        [sys.executable, str(HERE / "bench_beacon_flood.py")],
        [sys.executable, str(HERE / "bench_startup.py")],
    ]
    failures = 0
    for command in runs:
        print("$", " ".join(Path(part).name if part.endswith(".py") else part for part in command[1:]), flush=True)
        failures += subprocess.run(command, check=False).returncode != 0
    print(f"results in {HERE / 'results'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
