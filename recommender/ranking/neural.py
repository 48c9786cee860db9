"""The learned multi-task ranker: an MLP (256-128-64, ReLU) with one sigmoid head per outcome.

    logit_task(x) = head_task(MLP(x)) + s_task · prior_logit_task(x)

The hand-set prior's logit is one more input, through a learned per-task scale ``s`` (it carries item rates
and affinity in a form the network would otherwise need many examples to rediscover). Training
(``training.neural``, torch) starts from s = 1 and zero heads, i.e. from the prior, and moves freely from
there. Inference is plain numpy, so the request path never loads torch.
"""

from __future__ import annotations

import io
import json

import numpy as np

from .features import FEATURE_NAMES, F
from .model import TASKS, RankerModel, prior_logits, sigmoid

HIDDEN: tuple[int, ...] = (256, 128, 64)
KIND = "mlp"


class NeuralRanker:
    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]], prior_scale: np.ndarray,
                 affinity_gain: float, collab_gain: float, popularity_gain: float, steps: int = 0) -> None:
        """``layers``: (W (out, in), b (out,)) for each hidden layer then the heads (len(TASKS) outputs)."""
        if layers[0][0].shape[1] != len(FEATURE_NAMES) or layers[-1][0].shape[0] != len(TASKS):
            raise ValueError("layer shapes do not match the feature set and tasks")
        self.layers = [(w.astype(np.float32), b.astype(np.float32)) for w, b in layers]
        self.prior_scale = np.asarray(prior_scale, dtype=np.float64)
        self.affinity_gain = affinity_gain
        self.collab_gain = collab_gain
        self.popularity_gain = popularity_gain
        self.steps = steps

    @property
    def hidden(self) -> tuple[int, ...]:
        return tuple(w.shape[0] for w, _ in self.layers[:-1])

    def prior_logits(self, X: np.ndarray) -> np.ndarray:
        return prior_logits(X, self.affinity_gain, self.collab_gain, self.popularity_gain)

    def logits(self, X: np.ndarray) -> np.ndarray:
        h = np.asarray(X, dtype=np.float32)
        for w, b in self.layers[:-1]:
            h = h @ w.T
            h += b  # in place: the same sums as h @ w.T + b, without a temporary per layer
            np.maximum(h, 0.0, out=h)
        w, b = self.layers[-1]
        return (h @ w.T + b).astype(np.float64) + self.prior_logits(X) * self.prior_scale[None, :]

    def predict(self, X: np.ndarray) -> np.ndarray:
        return sigmoid(self.logits(X))

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        meta = {"kind": KIND, "tasks": TASKS, "features": FEATURE_NAMES, "steps": self.steps,
                "affinity_gain": self.affinity_gain, "collab_gain": self.collab_gain,
                "popularity_gain": self.popularity_gain, "n_layers": len(self.layers)}
        arrays = {f"w{i}": w for i, (w, _) in enumerate(self.layers)}
        arrays.update({f"b{i}": b for i, (_, b) in enumerate(self.layers)})
        np.savez(buffer, prior_scale=self.prior_scale, meta=np.array(json.dumps(meta)), **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> NeuralRanker:
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("kind") != KIND or tuple(meta["tasks"]) != TASKS:
                raise ValueError("not a neural ranker for these tasks")
            layers = [(data[f"w{i}"], data[f"b{i}"]) for i in range(int(meta["n_layers"]))]
            stored = tuple(meta["features"])
            if stored != FEATURE_NAMES:
                # An older feature set: inputs that still exist keep their weights, new ones start at 0.
                unknown = set(stored) - set(FEATURE_NAMES)
                if unknown:
                    raise ValueError(f"stored ranker uses features that no longer exist: {sorted(unknown)}")
                w0 = np.zeros((layers[0][0].shape[0], len(FEATURE_NAMES)), dtype=np.float32)
                w0[:, [F[name] for name in stored]] = layers[0][0]
                layers[0] = (w0, layers[0][1])
            return cls(layers, data["prior_scale"], float(meta["affinity_gain"]), float(meta["collab_gain"]),
                       float(meta["popularity_gain"]), int(meta["steps"]))


Ranker = RankerModel | NeuralRanker


def load_ranker(blob: bytes) -> Ranker:
    """A stored ranker of either kind (the hand-set prior family or the neural one)."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        kind = json.loads(str(data["meta"])).get("kind")
    return NeuralRanker.from_bytes(blob) if kind == KIND else RankerModel.from_bytes(blob)
