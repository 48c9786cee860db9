"""The learned ranker in the offline harness's test fits: ForYou's served defaults fitted on each MovieLens-100k
protocol's training part (as `foryou eval offline` fits them), then the ranker_training job's summary: the
candidate against the prior on the newest held-out impressions, per task (AUC, log loss) and overall.

    python benchmarks/eval_ranker.py [--hashed] [--datasets data/datasets] [--dump DIR]

Writes benchmarks/results/eval_ranker.json. ``--dump``: also pickle each fit's examples (for experiments).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from recommender.evaluation import load_movielens_100k  # noqa: E402
from recommender.evaluation.embedding import hashed_bow_embedder  # noqa: E402
from recommender.evaluation.foryou import ForYouPolicy  # noqa: E402
from recommender.evaluation.offline import PROTOCOLS, protocol_splits  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "eval_ranker.json"
SUMMARY_KEYS = ("promoted", "note", "candidate", "prior", "per_task", "n_train", "n_holdout", "training", "skipped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="data/datasets")
    parser.add_argument("--hashed", action="store_true", help="hashed bag-of-words item text (no sentence encoder)")
    parser.add_argument("--dump", help="a folder for each fit's training examples")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    embed, embed_name = hashed_bow_embedder(64), "hashed bag-of-words"
    if not args.hashed:
        from app.__main__ import _text_embedder
        from app.config import load_settings

        encoder = _text_embedder(load_settings())
        if encoder is not None:
            embed, embed_name = encoder, "the app's sentence encoder"
    data = load_movielens_100k(args.datasets)
    out: dict = {"kind": "ranker_offline", "embedder": embed_name,
                 "source": "ForYou served defaults fitted on each protocol's training part (the offline harness's "
                           "test fit); the ranker_training job's summary", "protocols": {}}
    load = os.getloadavg()
    for protocol in PROTOCOLS:
        split, _ = protocol_splits(data.interactions, protocol)
        policy = ForYouPolicy(embed)
        began = time.perf_counter()
        policy.fit(split.train, split.catalogue(data.items), split.cutoff)
        ranker = policy.job_results.get("ranker_training") or {}
        block = {k: ranker[k] for k in SUMMARY_KEYS if k in ranker}
        block["fit_seconds"] = round(time.perf_counter() - began, 1)
        out["protocols"][protocol] = block
        print(protocol, json.dumps({k: block.get(k) for k in ("note", "candidate", "prior", "n_train", "n_holdout")}))
        if args.dump:
            state = policy.rec._state
            Path(args.dump).mkdir(parents=True, exist_ok=True)
            with open(Path(args.dump) / f"{protocol}.pkl", "wb") as f:
                pickle.dump({"data": state.examples.since(split.cutoff - state.config.training_window_seconds),
                             "prior": state.ranker.models[0], "config": state.config}, f)
    out["load_average"] = [round(x, 2) for x in (*load, *os.getloadavg())]
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
